"""`make bench` must keep running: every section at its smallest (`python -m bench --smoke`), so a change that
breaks one fails here instead of when figures are next wanted. Speed itself is the benchmarks' business."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bench.__main__ import SECTIONS
from tests.conftest import PROJECT


@pytest.mark.browser
@pytest.mark.engine
def test_every_benchmark_section_runs(chromium):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    finished = re.findall(r"^  (\w+) took \d+ s$", done.stdout, re.M)
    assert finished == list(SECTIONS)
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and " | " in line[2:]]
    for section_number in range(1, 12):
        assert any(row.startswith(f"| {section_number} ") for row in rows), f"section {section_number}"
