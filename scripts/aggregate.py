"""Aggregates of leaderboard rows: means by key, one value per seed, confidence intervals."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def mean_by(rows: list[dict[str, str]], keys: tuple[str, ...], column: str) -> dict[tuple, float]:
    """Mean of ``column`` per combination of ``keys``."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(float(row[column]))
    return {k: statistics.fmean(v) for k, v in groups.items()}


def per_seed(rows: list[dict[str, str]], column: str) -> list[float]:
    """One value per seed: the mean over the scenarios of that seed."""
    by_seed: dict[int, list[float]] = {}
    for r in rows:
        by_seed.setdefault(int(r["seed"]), []).append(float(r[column]))
    return [statistics.fmean(v) for _, v in sorted(by_seed.items())]


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval over independent seeds (0 for
    a single value). scipy gives the t quantile; with 5 seeds the interval is mean +- 2.78 s / sqrt(5)."""
    from scipy import stats

    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, 0.0
    return mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(values) / n**0.5
