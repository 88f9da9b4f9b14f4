"""Confidence intervals of seed means."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import pandas as pd


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval over independent seeds (0 for
    a single value). scipy gives the t quantile; with 5 seeds the interval is mean +- 2.78 s / sqrt(5)."""
    from scipy import stats

    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, 0.0
    return mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(values) / n**0.5


def seed_means(results: pd.DataFrame, keys: list[str], column: str) -> pd.Series:
    """One value per seed and ``keys`` group: the mean of ``column`` over the scenarios of that seed."""
    return results.groupby([*keys, "seed"])[column].mean()
