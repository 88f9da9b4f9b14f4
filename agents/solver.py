"""InfAdapter's decision: which variants run, with how many cores, for a forecast rate.

    maximise  alpha * AA - (beta * RC + gamma * LC)
    s.t.      capacity of the chosen variants >= rate,  total cores <= budget,
              each variant 0 or at least ``min_cores`` cores (one replica, vertical scaling)

with AA, RC and LC as in ``infadapter_env.objective`` (AA fills the most accurate variants first).
Two exact solvers give the same optimum:

``ilp``
    The paper's integer program in PuLP: binaries ``x[v, c]`` (variant v gets c cores), served
    shares ``s[v] <= capacity_v`` with ``sum s = rate`` (maximising ``sum acc_v s_v`` fills the most
    accurate first), and ``L >= load_v / max_load`` for every started or resized variant. Bundled
    CBC by default, HiGHS selectable; both run with zero optimality gap.
``fast``
    Exhaustive search over every deployment (20,529 with the defaults), vectorised in numpy over a
    table built once per planning model.

A rate that no deployment within the budget can serve gets the paper code's fallback: the variant
with the highest capacity (ResNet18) at the full budget, with ``fallback=True`` in the decision.
A rate of 0 is planned as ``MIN_PLANNING_RATE_RPS`` so that one variant stays warm.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pulp

from infadapter_env.deployment import enumerate_deployments
from infadapter_env.objective import Weights, average_accuracy, loading_cost, objective_value, resource_cost
from infadapter_env.profiles import CapacityProfile

SOLVERS = ("fast", "ilp")
ILP_BACKENDS = ("cbc", "highs")
MIN_PLANNING_RATE_RPS = 1e-3


@dataclass(frozen=True, eq=False)
class PlanningModel:
    """What a planner believes: capacity per (variant, cores), accuracy, load times, budget."""

    profile: CapacityProfile
    budget_cores: int

    def __post_init__(self) -> None:
        budget, low = self.budget_cores, self.profile.min_cores
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < low:
            raise ValueError(
                f"budget_cores must be an integer >= min_cores ({low}: one active replica needs that many), "
                f"got {budget!r}"
            )

    @property
    def n_variants(self) -> int:
        return len(self.profile.variants)

    @property
    def max_cores(self) -> int:
        return min(self.budget_cores, self.profile.max_cores_per_replica)

    @property
    def table(self) -> _DeploymentTable:
        return _deployment_table(self.profile, self.budget_cores)

    def capacity(self, cores: tuple[int, ...]) -> list[float]:
        return [float(self.profile.per_replica_rps[v, c]) for v, c in enumerate(cores)]


@dataclass(frozen=True)
class _DeploymentTable:
    """Every deployment, sorted by total capacity, as one contiguous column per variant.

    Sorting makes the deployments that can serve a rate a suffix of the table (views, no copies);
    columns keep every numpy operation on contiguous 1-D arrays.
    """

    total_capacity: np.ndarray  # (N,), ascending
    resource_cost: np.ndarray  # (N,): cores / budget
    cores: tuple[np.ndarray, ...]  # per variant, (N,)
    capacity: tuple[np.ndarray, ...]  # per variant, (N,)
    more_accurate: tuple[np.ndarray, ...]  # per variant: capacity of the variants more accurate than it
    load_if_active: tuple[np.ndarray, ...]  # per variant: its normalised load time if it runs, else 0

    @classmethod
    def build(cls, model: PlanningModel) -> _DeploymentTable:
        profile = model.profile
        cores = enumerate_deployments(model.n_variants, profile.min_cores, model.max_cores, model.budget_cores)
        capacity = profile.per_replica_rps[np.arange(model.n_variants), cores]
        total = capacity.sum(axis=1)
        order = np.argsort(total, kind="stable")
        more_accurate = total[:, None] - np.cumsum(capacity, axis=1)
        load = np.where(cores > 0, profile.load_time_s / profile.load_time_s.max(), 0.0)

        def columns(matrix: np.ndarray) -> tuple[np.ndarray, ...]:
            return tuple(np.ascontiguousarray(matrix[order, v]) for v in range(model.n_variants))

        return cls(
            total[order],
            cores.sum(axis=1)[order] / model.budget_cores,
            columns(cores),
            columns(capacity),
            columns(more_accurate),
            columns(load),
        )


@lru_cache(maxsize=16)
def _deployment_table(profile: CapacityProfile, budget_cores: int) -> _DeploymentTable:
    """Built once per profile object (``load_profile`` caches those) and budget: agents re-create
    planning models every episode."""
    return _DeploymentTable.build(PlanningModel(profile, budget_cores))


@dataclass(frozen=True)
class Decision:
    """A solver's answer, with every term of the objective evaluated by ``infadapter_env.objective``."""

    cores: tuple[int, ...]
    objective: float
    aa: float
    rc: float
    lc: float
    rate_rps: float
    capacity_rps: float
    fallback: bool
    solver: str
    solve_time_s: float = field(compare=False)

    def as_dict(self, names: tuple[str, ...]) -> dict[str, object]:
        return {
            "deployment": {name: cores for name, cores in zip(names, self.cores, strict=True) if cores},
            "cores": list(self.cores),
            "objective": self.objective,
            "terms": {"AA": self.aa, "RC": self.rc, "LC": self.lc},
            "rate_rps": self.rate_rps,
            "capacity_rps": self.capacity_rps,
            "fallback": self.fallback,
            "solver": self.solver,
            "solve_time_s": self.solve_time_s,
        }


def evaluate(
    model: PlanningModel, cores: tuple[int, ...], rate_rps: float, previous: tuple[int, ...], weights: Weights
) -> tuple[float, float, float, float]:
    """Objective, AA, RC and LC of a single-replica deployment (the one formula)."""
    capacity = model.capacity(cores)
    aa = average_accuracy(capacity, model.profile.accuracy.tolist(), rate_rps)
    rc = resource_cost(sum(cores), model.budget_cores)
    lc = loading_cost(
        [(1 if c else 0, c) for c in previous],
        [(1 if c else 0, c) for c in cores],
        model.profile.load_time_s.tolist(),
    )
    return objective_value(aa, rc, lc, weights), aa, rc, lc


def check_solver(solver: str, backend: str) -> None:
    """A clear error for a solver or ILP backend name that does not exist."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid solvers: {', '.join(SOLVERS)}")
    if backend not in ILP_BACKENDS:
        raise ValueError(f"unknown ILP backend {backend!r}; valid backends: {', '.join(ILP_BACKENDS)}")


def check_rate(rate_rps: float) -> float:
    if not isinstance(rate_rps, int | float) or isinstance(rate_rps, bool) or not np.isfinite(rate_rps):
        raise ValueError(f"rate must be a finite number of requests/s, got {rate_rps!r}")
    if rate_rps < 0:
        raise ValueError(f"rate must be >= 0 requests/s, got {rate_rps!r}")
    return max(float(rate_rps), MIN_PLANNING_RATE_RPS)


def check_previous(model: PlanningModel, previous: tuple[int, ...]) -> tuple[int, ...]:
    previous = tuple(int(c) for c in previous)
    if len(previous) != model.n_variants or any(c < 0 or c > model.profile.max_cores_per_replica for c in previous):
        raise ValueError(
            f"previous deployment must give 0..{model.profile.max_cores_per_replica} cores for each of "
            f"{model.n_variants} variants, got {list(previous)}"
        )
    return previous


def solve(
    model: PlanningModel,
    rate_rps: float,
    previous: tuple[int, ...],
    weights: Weights,
    solver: str = "fast",
    backend: str = "cbc",
) -> Decision:
    """The optimal deployment for ``rate_rps`` coming from ``previous`` (cores per variant)."""
    check_solver(solver, backend)
    rate = check_rate(rate_rps)
    previous = check_previous(model, previous)
    started = time.perf_counter()
    cores = (
        _solve_fast(model, rate, previous, weights)
        if solver == "fast"
        else _solve_ilp(model, rate, previous, weights, backend)
    )
    fallback = cores is None
    if cores is None:
        cores = _fallback(model)
    elapsed = time.perf_counter() - started
    value, aa, rc, lc = evaluate(model, cores, rate, previous, weights)
    label = solver if solver == "fast" else f"ilp-{backend}"
    return Decision(cores, value, aa, rc, lc, rate, sum(model.capacity(cores)), fallback, label, elapsed)


@lru_cache(maxsize=1)
def _silence_highs_banner() -> None:
    """HiGHS prints a banner to the C-level stdout the first time it is created in a process,
    which would corrupt ``--json`` output; create that first instance with stdout closed."""
    import highspy

    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def solve_single_variant(
    model: PlanningModel, rate_rps: float, previous: tuple[int, ...], weights: Weights
) -> Decision:
    """Model switching (MS+): for each variant the fewest cores that serve the rate; the best of
    those single-variant deployments by the objective; the fallback if no variant can."""
    rate = check_rate(rate_rps)
    previous = check_previous(model, previous)
    started = time.perf_counter()
    best: tuple[float, tuple[int, ...]] | None = None
    sizes = range(model.profile.min_cores, model.max_cores + 1)
    for v in range(model.n_variants):
        cores = next((c for c in sizes if model.profile.per_replica_rps[v, c] >= rate), None)
        if cores is None:
            continue
        candidate = tuple(cores if u == v else 0 for u in range(model.n_variants))
        value = evaluate(model, candidate, rate, previous, weights)[0]
        if best is None or value > best[0]:
            best = (value, candidate)
    chosen = best[1] if best is not None else _fallback(model)
    elapsed = time.perf_counter() - started
    value, aa, rc, lc = evaluate(model, chosen, rate, previous, weights)
    return Decision(chosen, value, aa, rc, lc, rate, sum(model.capacity(chosen)), best is None, "single", elapsed)


def _fallback(model: PlanningModel) -> tuple[int, ...]:
    """The paper code's answer to an unservable rate: the fastest variant at the full budget."""
    top = model.profile.per_replica_rps[:, model.max_cores]
    fastest = int(np.argmax(top))
    return tuple(model.max_cores if v == fastest else 0 for v in range(model.n_variants))


def _solve_fast(
    model: PlanningModel, rate: float, previous: tuple[int, ...], weights: Weights
) -> tuple[int, ...] | None:
    """Exhaustive search. LC is evaluated only where it can matter: LC lies in [0, 1], so a
    deployment whose other terms trail the best by more than gamma cannot be optimal."""
    table = model.table
    first = int(np.searchsorted(table.total_capacity, rate, side="left"))
    if first == table.total_capacity.size:
        return None
    value = -weights.beta * table.resource_cost[first:]
    for v, accuracy in enumerate(model.profile.accuracy.tolist()):
        served = np.subtract(rate, table.more_accurate[v][first:])
        np.maximum(served, 0.0, out=served)
        np.minimum(served, table.capacity[v][first:], out=served)
        served *= weights.alpha * accuracy / rate
        value += served
    contenders = np.flatnonzero(value >= value.max() - weights.gamma - 1e-12)
    lc = np.zeros(contenders.size)
    for v, before in enumerate(previous):
        cores = table.cores[v][first:][contenders]
        np.maximum(lc, np.where(cores != before, table.load_if_active[v][first:][contenders], 0.0), out=lc)
    best = first + int(contenders[int(np.argmax(value[contenders] - weights.gamma * lc))])
    return tuple(int(column[best]) for column in table.cores)


def _solve_ilp(
    model: PlanningModel, rate: float, previous: tuple[int, ...], weights: Weights, backend: str
) -> tuple[int, ...] | None:
    profile = model.profile
    sizes = [0, *range(profile.min_cores, model.max_cores + 1)]
    variants = range(model.n_variants)
    max_load = float(profile.load_time_s.max())
    problem = pulp.LpProblem("infadapter", pulp.LpMaximize)
    x = {(v, c): pulp.LpVariable(f"x_{v}_{c}", cat=pulp.LpBinary) for v in variants for c in sizes}
    share = {v: pulp.LpVariable(f"s_{v}", lowBound=0) for v in variants}
    loading = pulp.LpVariable("L", lowBound=0)
    cores_used = pulp.lpSum(c * x[v, c] for v in variants for c in sizes)
    problem += (
        weights.alpha / rate * pulp.lpSum(float(profile.accuracy[v]) * share[v] for v in variants)
        - weights.beta / model.budget_cores * cores_used
        - weights.gamma * loading
    )
    for v in variants:
        problem += pulp.lpSum(x[v, c] for c in sizes) == 1
        problem += share[v] <= pulp.lpSum(float(profile.per_replica_rps[v, c]) * x[v, c] for c in sizes)
        changed = pulp.lpSum(x[v, c] for c in sizes if c > 0 and c != previous[v])
        problem += loading >= float(profile.load_time_s[v]) / max_load * changed
    problem += pulp.lpSum(share.values()) == rate
    problem += cores_used <= model.budget_cores
    if backend == "cbc":
        # CBC's default cutoff increment lets it stop at a solution up to ~1e-5 below the optimum;
        # a tiny increment makes it prove optimality to the precision the fast solver has.
        engine = pulp.PULP_CBC_CMD(msg=False, gapRel=0, gapAbs=0, options=["increment 1e-12"])
    else:
        _silence_highs_banner()
        engine = pulp.HiGHS(msg=False, gapRel=0, gapAbs=0)
    status = problem.solve(engine)
    if pulp.LpStatus[status] != "Optimal":
        return None
    return tuple(next(c for c in sizes if (x[v, c].value() or 0) > 0.5) for v in variants)
