"""Repeated timings and their summary: every figure in the suite is a median and a p95 after a warm-up."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured quantity: its samples summarised."""

    section: str
    name: str
    unit: str
    median: float
    p95: float
    samples: int
    budget: str = ""

    def as_dict(self) -> dict[str, object]:
        """The figure as JSON-ready data."""
        return {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            "median": round(self.median, 4),
            "p95": round(self.p95, 4),
            "samples": self.samples,
            "budget": self.budget,
        }


def p95(values: Sequence[float]) -> float:
    """The 95th percentile (nearest rank), or the largest value of a short series."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def summarise(section: str, name: str, unit: str, values: Sequence[float], budget: str = "") -> Figure:
    """A figure from raw samples."""
    if not values:
        raise ValueError(f"{section}/{name}: no samples")
    return Figure(section, name, unit, statistics.median(values), p95(values), len(values), budget)


def time_ms(action: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    """Milliseconds each of `repeats` calls of `action` took, after `warmup` untimed calls."""
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples
