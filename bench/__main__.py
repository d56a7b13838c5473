"""`make bench`: every benchmark, one table, the same figures as JSON under bench/results/.

Run: .venv/bin/python -m bench [--quick]
     [--only streaming,store,replicas,page,serve,concurrency,browser,models,documents,tools,media]
`--quick` uses fewer repeats and at most 1,000 conversations, to check the suite itself runs.
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


def run(sections: tuple[str, ...], quick: bool) -> list[Figure]:
    """Run the chosen sections in order."""
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

    figures: list[Figure] = []
    for section in sections:
        started = time.perf_counter()
        print(f"… {section}", flush=True)
        if section == "streaming":
            figures += streaming.run(3 if quick else 7)
        elif section == "store":
            figures += store.run((100, 1000) if quick else (100, 1000, 10000), 10 if quick else store.REPEATS)
        elif section == "replicas":
            figures += replicas.run(5 if quick else replicas.TURNS)
        elif section == "page":
            figures += page.run(5 if quick else page.REPEATS)
        elif section == "serve":
            figures += serve.run(2 if quick else serve.STARTS)
        elif section == "concurrency":
            figures += concurrency.run(1 if quick else concurrency.ROUNDS)
        elif section == "browser":
            figures += browser.run(2 if quick else browser.PAIRS)
        elif section == "models":
            figures += models.run(1 if quick else models.REPLIES, 1 if quick else models.LONG_PROMPTS)
        elif section == "documents":
            figures += documents.run()
        elif section == "tools":
            figures += tools.run(quick)
        elif section == "media":
            figures += media.run(quick)
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
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = parser.parse_args()
    offline.apply()
    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    about = machine()
    figures = run(sections, args.quick)
    print()
    heading = f"{about['cpu']}, {about['cores']} cores, Python {about['python']}, commit {about['commit']}"
    print(heading)
    print(table(figures))
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
