"""The multi-objective view of a beta sweep: per agent, its Pareto front and hypervolume.

Beta trades accuracy against cores; an agent answers each beta with one operating point, (effective
accuracy, mean cores, SLO violation %), the means over the scenarios and seeds at that beta. Its
Pareto front is the set of those points that no other of its points dominates (as accurate or more,
as few cores or fewer, as few violations or fewer, and better in one). Its hypervolume is the
volume that the front dominates, up to the reference point (accuracy 0, the core budget, 100 %
violations), in the box between the reference point and the ideal one (accuracy 1, no cores, no
violations), whose volume is 1: an agent that reached accuracy 1 on no cores without a violation
would score 1. The hypervolume is exact (``hypervolume``: slicing, one dimension at a time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

# (column, direction): +1 maximised, -1 minimised
OBJECTIVES = (("aa_effective", 1), ("mean_cores", -1), ("slo_violation_pct", -1))
DEFAULT_BUDGET_CORES = 20  # EnvSettings's budget_cores, for rows that do not record it


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` dominates ``b`` (every coordinate maximised): as good in all, better in one."""
    return bool(np.all(a >= b) and np.any(a > b))


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Mask of the points (rows, every coordinate maximised) that no other point dominates; equal
    points are all kept."""
    points = np.asarray(points, dtype=float)
    return np.array([not any(dominates(q, p) for q in points) for p in points], dtype=bool)


def hypervolume(points: np.ndarray, reference: np.ndarray | None = None) -> float:
    """The exact volume of the union of the boxes between ``reference`` (default: the origin) and
    each point (rows; every coordinate maximised). A point not above the reference in every
    coordinate adds nothing. Slices along the last coordinate, recursively; fine for the few points
    of a beta sweep (O(n^d))."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"points must be a 2-D array (points x coordinates), got shape {points.shape}")
    reference = np.zeros(points.shape[1]) if reference is None else np.asarray(reference, dtype=float)
    points = points[np.all(points > reference, axis=1)] - reference
    return _volume(points)


def _volume(points: np.ndarray) -> float:
    """The volume dominated by ``points`` (all positive) above the origin."""
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(points[:, 0].max())
    levels = np.unique(points[:, -1])[::-1]  # the last coordinate's values, highest first
    volume = 0.0
    for k, level in enumerate(levels):
        below = levels[k + 1] if k + 1 < len(levels) else 0.0
        # The slice between ``below`` and ``level``: every point reaching ``level`` covers it.
        volume += (level - below) * _volume(points[points[:, -1] >= level, :-1])
    return volume


def normalised(points: pd.DataFrame, budget_cores: float) -> np.ndarray:
    """Operating points (columns of ``OBJECTIVES``) as coordinates to maximise in [0, 1], the
    reference point at the origin: accuracy, 1 - cores / budget, 1 - violations / 100."""
    return np.column_stack(
        [
            points["aa_effective"].to_numpy(float),
            1 - points["mean_cores"].to_numpy(float) / budget_cores,
            1 - points["slo_violation_pct"].to_numpy(float) / 100,
        ]
    )


@dataclass(frozen=True)
class Front:
    """One agent over the beta sweep: its operating points (one per beta, with ``on_front``) and
    the normalised hypervolume of its front."""

    agent: str
    points: pd.DataFrame  # beta, aa_effective, mean_cores, slo_violation_pct, on_front
    hypervolume: float

    @property
    def front_betas(self) -> list[float]:
        return [float(b) for b in self.points.loc[self.points["on_front"], "beta"]]


def budget_of(results: pd.DataFrame) -> float:
    """The core budget the rows ran under (``budget_cores`` of their env settings; the largest if
    they differ, so that every point lies inside the reference box)."""
    budgets = set()
    for text in results["env_settings"].unique() if "env_settings" in results else []:
        try:
            budgets.add(float(json.loads(text).get("budget_cores", DEFAULT_BUDGET_CORES)))
        except (ValueError, AttributeError):
            continue
    return max(budgets) if budgets else float(DEFAULT_BUDGET_CORES)


def pareto_fronts(results: pd.DataFrame, budget_cores: float | None = None) -> list[Front]:
    """Every agent's front and hypervolume over its betas, largest hypervolume first."""
    budget = budget_of(results) if budget_cores is None else float(budget_cores)
    columns = [c for c, _ in OBJECTIVES]
    means = results.groupby(["agent", "beta"])[columns].mean().reset_index()
    fronts = []
    for agent, own in means.groupby("agent"):
        own = own.sort_values("beta").reset_index(drop=True)
        coordinates = normalised(own, budget)
        own["on_front"] = non_dominated(coordinates)
        volume = hypervolume(coordinates[own["on_front"].to_numpy()])
        fronts.append(Front(str(agent), own[["beta", *columns, "on_front"]], volume))
    return sorted(fronts, key=lambda f: (-f.hypervolume, f.agent))
