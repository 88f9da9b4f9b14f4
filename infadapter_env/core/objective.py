"""The InfAdapter objective: ``alpha * AA - (beta * RC + gamma * LC)``; the one implementation.

- AA, average accuracy: accuracy of each variant weighted by the share of the rate it answers, the
  most accurate variant filled first up to its capacity. Rate above the total capacity is answered
  by nobody and counts as accuracy 0.
- RC, resource cost: allocated cores divided by the core budget.
- LC, loading cost: the longest load time among variants that are newly started or resized, divided
  by the longest load time of any variant (a removed variant costs nothing).

The environment's reward, every agent and the leaderboard use these functions. The accuracy-first
split that AA assumes is the dispatcher's (``sim.cluster.served_shares``); the formulas the step's
report kernel applies are compiled in ``core.pipeline_kernels`` (a numba kernel's callees must sit in
its own file for the disk cache to see their changes), and this module calls the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from infadapter_env.arrays import row_max
from infadapter_env.core import pipeline_kernels as kernels
from infadapter_env.sim.cluster import served_shares

Value = TypeVar("Value", float, np.ndarray)  # a scalar, or one value per environment

PAPER_ALPHA = 1.0
PAPER_BETA = 0.05
PAPER_GAMMA = 0.001


@dataclass(frozen=True)
class Weights:
    """Objective weights (paper code defaults)."""

    alpha: float = PAPER_ALPHA
    beta: float = PAPER_BETA
    gamma: float = PAPER_GAMMA

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"objective weight {name} must be a finite number >= 0, got {value!r}")


def average_accuracy(capacity_rps: Sequence[float], accuracy: Sequence[float], rate_rps: float) -> float:
    """AA for a rate: accuracy weighted by served share; unserved rate counts 0.

    At rate 0 it is the accuracy of the most accurate variant with capacity (the one a request
    would reach), or 0 if nothing runs.
    """
    if rate_rps <= 0:
        for index in range(len(capacity_rps) - 1, -1, -1):
            if capacity_rps[index] > 0:
                return float(accuracy[index])
        return 0.0
    shares = served_shares(capacity_rps, rate_rps)
    return sum(a * s for a, s in zip(accuracy, shares, strict=True)) / rate_rps


def average_accuracy_batch(capacity_rps: np.ndarray, accuracy: np.ndarray, rate_rps: np.ndarray) -> np.ndarray:
    """``average_accuracy`` for N deployments at once: capacity (N, V), rates (N,). Compiled, in
    ``pipeline_kernels`` (whose step kernel reads it)."""
    f64 = np.float64
    return kernels.average_accuracy_batch(
        np.ascontiguousarray(capacity_rps, dtype=f64),
        np.ascontiguousarray(accuracy, dtype=f64),
        np.ascontiguousarray(rate_rps, dtype=f64),
    )


def loading_cost_batch(
    previous_replicas: np.ndarray,
    previous_cores: np.ndarray,
    replicas: np.ndarray,
    cores: np.ndarray,
    load_time_s: np.ndarray,
) -> np.ndarray:
    """``loading_cost`` for N decisions at once (arrays of shape (N, V))."""
    started = (replicas > 0) & (cores > 0) & ((replicas != previous_replicas) | (cores != previous_cores))
    return row_max(np.where(started, load_time_s, 0.0)) / load_time_s.max()


def resource_cost(total_cores: Value, budget_cores: float) -> Value:
    """RC: allocated cores over the budget (the step's report kernel applies the same function)."""
    return kernels.resource_cost.py_func(total_cores, budget_cores)  # type: ignore[no-any-return]


def loading_cost(
    previous: Sequence[tuple[int, int]], new: Sequence[tuple[int, int]], load_time_s: Sequence[float]
) -> float:
    """LC: the longest load among variants started or resized, over the longest load time.

    ``previous`` and ``new`` hold ``(replicas, cores)`` per variant; ``(0, 0)`` or any zero means off.
    """
    longest = 0.0
    for before, after, load in zip(previous, new, load_time_s, strict=True):
        active_after = after[0] > 0 and after[1] > 0
        if active_after and tuple(before) != tuple(after):
            longest = max(longest, load)
    return longest / max(load_time_s)


def objective_value(aa: Value, rc: Value, lc: Value, weights: Weights) -> Value:
    """``alpha * AA - (beta * RC + gamma * LC)``; elementwise on arrays (the batched env). The step's
    report kernel applies the same function."""
    return kernels.weighted_objective.py_func(  # type: ignore[no-any-return]
        aa, rc, lc, weights.alpha, weights.beta, weights.gamma
    )
