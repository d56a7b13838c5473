"""`make bench`: every benchmark, one table, the same figures as JSON under bench/results/.

Run: .venv/bin/python -m bench [--quick | --smoke]
     [--only streaming,store,replicas,page,serve,concurrency,browser,models,documents,tools,media]
`--quick` uses fewer repeats and at most 1,000 conversations; `--smoke` runs each section at its smallest,
to check it works, and keeps no results (tests/test_bench.py runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.stats import Figure
from utils import offline

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = (
    "streaming", "store", "replicas", "page", "serve", "concurrency", "browser", "models", "documents",
    "tools", "media",
)  # fmt: skip


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "system": platform.platform(),
        "commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def verdict(figure: Figure) -> str:
    """'met', 'MISSED' or '' for a figure without a budget. Budgets read like '≤ 10' or 'p95 ≤ 20'."""
    match = re.fullmatch(r"(p95 )?([≤≥]) ([\d.]+)", figure.budget) or re.fullmatch(
        r"()()([\d.]+)", figure.budget
    )
    if not match:
        return ""
    value = figure.p95 if match.group(1) else figure.median
    limit = float(match.group(3))
    ok = value >= limit if match.group(2) == "≥" else value <= limit
    return "met" if ok else "MISSED"


SIZES = ("full", "quick", "smoke")


def run(sections: tuple[str, ...], size: str = "full") -> list[Figure]:
    """Run the chosen sections in order, at a size of SIZES: "quick" uses fewer repeats and at most 1,000
    conversations; "smoke" the fewest that still run every part of a section (tests/test_bench.py)."""
    from bench import (
        browser,
        concurrency,
        documents,
        media,
        models,
        page,
        replicas,
        serve,
        store,
        streaming,
        tools,
    )  # fmt: skip

    def pick(full, quick, smoke):
        return {"full": full, "quick": quick, "smoke": smoke}[size]

    sections_run = {
        "streaming": lambda: streaming.run(pick(7, 3, 1)),
        "store": lambda: store.run(pick((100, 1000, 10000), (100, 1000), (100,)), pick(store.REPEATS, 10, 2)),
        "replicas": lambda: replicas.run(pick(replicas.TURNS, 5, 1)),
        "page": lambda: page.run(pick(page.REPEATS, 5, 2)),
        "serve": lambda: serve.run(pick(serve.STARTS, 2, 1)),
        "concurrency": lambda: concurrency.run(pick(concurrency.ROUNDS, 1, 1)),
        "browser": lambda: browser.run(pick(browser.PAIRS, 2, 1)),
        "models": lambda: models.run(pick(models.REPLIES, 1, 1), pick(models.LONG_PROMPTS, 1, 1)),
        "documents": lambda: documents.run(small=size == "smoke"),
        "tools": lambda: tools.run(quick=size != "full", smoke=size == "smoke"),
        "media": lambda: media.run(quick=size != "full", smoke=size == "smoke"),
    }
    figures: list[Figure] = []
    for section in sections:
        started = time.perf_counter()
        print(f"… {section}", flush=True)
        figures += sections_run[section]()
        print(f"  {section} took {time.perf_counter() - started:.0f} s", flush=True)
    return figures


def table(figures: list[Figure]) -> str:
    """The figures as one Markdown table."""
    lines = [
        "| section | figure | median | p95 | unit | n | budget | |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    for f in figures:
        digits = 3 if f.median < 1 else 2 if f.median < 100 else 0
        lines.append(
            f"| {f.section} | {f.name} | {f.median:.{digits}f} | {f.p95:.{digits}f} | {f.unit} | {f.samples} "
            f"| {f.budget} | {verdict(f)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, at most 1,000 conversations")
    parser.add_argument("--smoke", action="store_true", help="each section at its smallest, no results kept")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = parser.parse_args()
    offline.apply()
    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    about = machine()
    figures = run(sections, "smoke" if args.smoke else "quick" if args.quick else "full")
    print()
    heading = f"{about['cpu']}, {about['cores']} cores, Python {about['python']}, commit {about['commit']}"
    print(heading)
    print(table(figures))
    if args.smoke:
        return
    RESULTS.mkdir(exist_ok=True)
    document = {
        "machine": about,
        "quick": args.quick,
        "figures": [f.as_dict() | {"verdict": verdict(f)} for f in figures],
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"{stamp}.json", "latest.json"):
        (RESULTS / name).write_text(
            json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    (RESULTS / "latest.md").write_text(f"{heading}, {about['date']}\n\n{table(figures)}\n", encoding="utf-8")
    print(f"\nWritten to {RESULTS / (stamp + '.json')} and {RESULTS / 'latest.md'}")


if __name__ == "__main__":
    main()
