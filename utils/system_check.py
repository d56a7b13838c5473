"""What this machine lacks for some features: `python -m utils.system_check` (run by `make run`).

Prints one line per missing system package with the command that installs it, and never fails: the app
starts anyway, and each feature says the same where it is offered.
"""

from __future__ import annotations

import shutil

from controller import images, voices


def missing() -> list[str]:
    """What is missing, each with what to install."""
    found = []
    if shutil.which("bwrap") is None:
        found.append("Running code needs bubblewrap: sudo apt-get install bubblewrap")
    for problem in (images.ocr_problem(), voices.espeak_problem(), voices.piper_problem()):
        if problem:
            found.append(problem)
    return found


def main() -> None:
    """Print what is missing."""
    for line in missing():
        print(f"bnaGPT: {line}")


if __name__ == "__main__":
    main()
