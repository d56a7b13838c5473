"""Set up the sandbox's Python libraries: `python -m utils.sandbox_install` (run by `make install`).

Code runs as an unprivileged uid, so what it imports must live where that uid can read: the libraries of
requirements-sandbox.txt are installed for the system Python (the sandbox's interpreter, under /usr) into
a folder readable by all, with matplotlib's font cache made once. A stamp names what is installed, so a
second run does nothing. Failing here never fails the install: the app then says why code cannot run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from settings import PROJECT_DIR, load_settings

REQUIREMENTS = PROJECT_DIR / "requirements-sandbox.txt"


def _version(python: str) -> str:
    """The interpreter's "major.minor"."""
    out = subprocess.run(
        [python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def install(directory: Path, python: str) -> str:
    """Install into `directory` unless its stamp already matches; return what was done."""
    version = _version(python)
    stamp = hashlib.sha256(REQUIREMENTS.read_bytes() + version.encode()).hexdigest()
    if (directory / "stamp").is_file() and (directory / "stamp").read_text().strip() == stamp:
        return f"The sandbox's libraries are up to date in {directory}."
    directory.parent.mkdir(parents=True, exist_ok=True)
    building = directory.with_name(directory.name + ".new")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-warn-conflicts",
            "--target", str(building / "site"), "--only-binary=:all:", "--python-version", version,
            "-r", str(REQUIREMENTS),
        ],
        check=True,
    )  # fmt: skip
    # matplotlib's font cache, which each session copies instead of rebuilding (a second per session).
    subprocess.run(
        [
            python,
            "-I",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import matplotlib.pyplot",
            str(building / "site"),
        ],
        env={
            "MPLCONFIGDIR": str(building / "mplconfig"),
            "MPLBACKEND": "Agg",
            "PATH": os.environ.get("PATH", ""),
        },
        check=True,
        capture_output=True,
    )
    (building / "stamp").write_text(stamp + "\n")
    for root, dirs, files in os.walk(building):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            path = os.path.join(root, name)
            os.chmod(path, os.stat(path).st_mode & 0o777 | 0o444)
    os.chmod(building, 0o755)
    shutil.rmtree(directory, ignore_errors=True)
    building.rename(directory)
    return f"Installed the sandbox's libraries for Python {version} in {directory}."


def main() -> int:
    settings = load_settings()
    try:
        print(install(settings.sandbox_dir, settings.sandbox_python))
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"The code sandbox was not set up ({error}); bnaGPT runs without it.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
