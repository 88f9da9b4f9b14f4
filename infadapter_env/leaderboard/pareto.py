"""The multi-objective view of a beta sweep: per agent, its Pareto front.

Beta trades accuracy against cores; an agent answers each beta with one operating point, (effective
accuracy, mean cores, SLO violation %), the means over the scenarios and seeds at that beta. Its
Pareto front is the set of those points that no other of its points dominates (as accurate or more,
as few cores or fewer, as few violations or fewer, and better in one).

No hypervolume is given: any reference point weighs the three axes by an arbitrary box, and the one
used before (accuracy 0, the whole budget, 100 % violations) made it mostly a count of cores, since
the agents' violations and accuracies vary by a few percent of that box and their cores by half of
it. The fronts and the figure (``figures.pareto_figure``) show the trade-offs without a weighting.
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


def normalised(points: pd.DataFrame, budget_cores: float) -> np.ndarray:
    """Operating points (columns of ``OBJECTIVES``) as coordinates to maximise in [0, 1]: accuracy,
    1 - cores / budget, 1 - violations / 100."""
    return np.column_stack(
        [
            points["aa_effective"].to_numpy(float),
            1 - points["mean_cores"].to_numpy(float) / budget_cores,
            1 - points["slo_violation_pct"].to_numpy(float) / 100,
        ]
    )


@dataclass(frozen=True)
class Front:
    """One agent over the beta sweep: its operating points (one per beta, with ``on_front``)."""

    agent: str
    points: pd.DataFrame  # beta, aa_effective, mean_cores, slo_violation_pct, on_front

    @property
    def front_betas(self) -> list[float]:
        return [float(b) for b in self.points.loc[self.points["on_front"], "beta"]]


def budget_of(results: pd.DataFrame) -> float:
    """The core budget the rows ran under (``budget_cores`` of their env settings; the largest if
    they differ)."""
    budgets = set()
    for text in results["env_settings"].unique() if "env_settings" in results else []:
        try:
            budgets.add(float(json.loads(text).get("budget_cores", DEFAULT_BUDGET_CORES)))
        except (ValueError, AttributeError):
            continue
    return max(budgets) if budgets else float(DEFAULT_BUDGET_CORES)


def pareto_fronts(results: pd.DataFrame, budget_cores: float | None = None) -> list[Front]:
    """Every agent's front over its betas, by agent name."""
    budget = budget_of(results) if budget_cores is None else float(budget_cores)
    columns = [c for c, _ in OBJECTIVES]
    means = results.groupby(["agent", "beta"])[columns].mean().reset_index()
    fronts = []
    for agent, own in means.groupby("agent"):
        own = own.sort_values("beta").reset_index(drop=True)
        coordinates = normalised(own, budget)
        own["on_front"] = non_dominated(coordinates)
        fronts.append(Front(str(agent), own[["beta", *columns, "on_front"]]))
    return sorted(fronts, key=lambda f: f.agent)
