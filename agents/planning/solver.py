"""InfAdapter's decision: which variants run, with how many cores, for a forecast rate.

    maximise  alpha * AA - (beta * RC + gamma * LC)
    s.t.      capacity of the chosen variants >= rate,  total cores <= budget,
              each variant 0 or at least ``min_cores`` cores (one replica, vertical scaling)

with AA, RC and LC as in ``infadapter_env.core.objective`` (AA fills the most accurate variants first).
Two exact solvers give the same optimum:

``ilp``
    The paper's integer program in PuLP: binaries ``x[v, c]`` (variant v gets c cores), served
    shares ``s[v] <= capacity_v`` with ``sum s = rate`` (maximising ``sum acc_v s_v`` fills the most
    accurate first), and ``L >= load_v / max_load`` for every started or resized variant. Bundled
    CBC by default, HiGHS selectable; both run with zero optimality gap.
``fast``
    Two exact algorithms, chosen by the size of the world:

    - up to ``ENUMERATION_LIMIT`` deployments (the shipped world has 20,529): exhaustive search over
      every deployment, vectorised in numpy over a table built once per planning model. Among
      deployments of equal objective it returns the one with the least total capacity, then the
      first in lexicographic order of cores; published results depend on that choice.
    - above it (10 variants on 64 cores have about 2 x 10^11): branch and bound over the variants
      from the most accurate down, one vectorised level per variant. A state fixes the cores of the
      variants decided so far and holds their cores, capacity, objective and loading cost. While
      that capacity is below the rate, those variants serve all of it (AA fills the most accurate
      first), so the objective so far is exact; a choice that reaches the rate completes a
      deployment (the variants below stay off), which is scored exactly. Only the rest of the rate,
      left to variants ``0..u``, is bounded, by the smallest of (a) the rest at the best accuracy
      among them on the fewest cores that can serve it (a knapsack over cores, tabled once per
      model), (b) the linear relaxation of serving it, each variant at its best capacity per
      core, evaluated through its dual at the breakpoints of the dual's envelope, and (c) a
      Lagrangian bound: for a multiplier lambda on the served rate, lambda times the rest plus a
      knapsack over whole cores of what each variant earns above lambda less its cores' price
      (tabled once per model at a grid of multipliers and prices, read between two prices by the
      chord, which bounds a convex function from above). The loading cost in every bound is at
      least the least load of serving the rest (none if one of variants ``0..u`` can stay as it
      is, else the shortest load time among them). The dual bound (b) splits into a part of the
      state and a part of the choice, which screens a state's choices before they are built. A
      state is dropped when its bound is below the best deployment found, or when another state
      dominates it: no more cores, no less capacity, and an objective ahead
      by at least the accuracy the rest it leaves would have earned and the loading cost the other
      may still add. The first incumbent is the best deployment of one or two variants (each
      size of the more accurate, the other on the fewest cores that serve the rest); a first pass
      keeps only the ``DIVE_WIDTH`` states of best bound per level (a beam) to improve it; the
      second keeps every state the bound and dominance allow. The two loops over states (extend
      and bound each state, stopping at the first bound that closes it; the dominance filter) are
      compiled with numba (``infadapter_agents.planning.solver_kernels``), loaded by ``prepare()``.
      Capacity need not grow with cores (measured tables do not): a size is tried only when it has
      more capacity than every smaller size, or it is the variant's previous size (no load). Of
      deployments of equal objective it keeps the first it finds.

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

from infadapter_env.core.actions import enumerate_deployments
from infadapter_env.core.objective import Weights, average_accuracy, loading_cost, objective_value, resource_cost
from infadapter_env.world.profiles import CapacityProfile

SOLVERS = ("fast", "ilp")
ILP_BACKENDS = ("cbc", "highs")
MIN_PLANNING_RATE_RPS = 1e-3
# Worlds with at most this many deployments are searched exhaustively (a table of tens of MB at
# most); larger ones by branch and bound, whose first pass keeps DIVE_WIDTH states per level.
ENUMERATION_LIMIT = 100_000
DIVE_WIDTH = 8
KNAPSACK_PRICES = 25  # per-core prices the knapsack bound is tabled at (0, then 1e-3..1e3 geometrically)


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
    def n_deployments(self) -> int:
        """How many deployments fit the budget (each variant 0 or ``min_cores..max_cores`` cores)."""
        return _count_deployments(self.n_variants, self.profile.min_cores, self.max_cores, self.budget_cores)

    @property
    def enumerable(self) -> bool:
        """Whether the fast solver searches every deployment (else it branches and bounds)."""
        return self.n_deployments <= ENUMERATION_LIMIT

    @property
    def max_capacity_rps(self) -> float:
        """The most capacity any deployment within the budget has: higher rates get the fallback."""
        return float(self.search_tables.reach[-1, -1])

    @property
    def table(self) -> _DeploymentTable:
        return _deployment_table(self.profile, self.budget_cores)

    @property
    def search_tables(self) -> _SearchTables:
        return _search_tables(self.profile, self.budget_cores)

    def prepare(self) -> None:
        """Build what the fast solver reads (once per profile and budget), and load branch and
        bound's compiled loops where it needs them, outside any decision."""
        if self.enumerable:
            _ = self.table
        else:
            _ = self.search_tables
            from infadapter_agents.planning import solver_kernels

            solver_kernels.warm_up()

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


@lru_cache(maxsize=64)
def _count_deployments(n_variants: int, min_cores: int, max_cores: int, budget_cores: int) -> int:
    """Deployments within the budget, counted by convolution (floats: exact below 2**53, and only
    compared with ``ENUMERATION_LIMIT``)."""
    one = np.zeros(max_cores + 1)
    one[0] = 1.0
    one[min_cores:] = 1.0
    ways = np.ones(1)  # ways[c]: deployments of the variants so far on exactly c cores
    for _ in range(n_variants):
        ways = np.convolve(ways, one)[: budget_cores + 1]
    return int(min(ways.sum(), 2.0**62))


@dataclass(frozen=True)
class _SearchTables:
    """What branch and bound reads, built once per planning model (independent of the rate).

    ``sizes`` are the allowed cores per variant (0, ``min_cores..max_cores``); ``candidates[v]``
    the sizes with more capacity than every smaller size (the others need more cores for no more
    capacity) and that capacity; ``covering[v, i]`` the most capacity of variant v within
    ``sizes[i]`` cores (non-decreasing, so the fewest cores covering a rate is a search);
    ``reach[u, c]`` the most capacity of variants ``0..u`` together within c cores (a knapsack);
    ``rate_per_core[v]`` the largest capacity per core of v (its capacity is at most that times
    its cores); ``load`` the load times over the longest.
    """

    sizes: np.ndarray
    candidates: tuple[tuple[np.ndarray, np.ndarray], ...]
    covering: np.ndarray
    reach: np.ndarray
    rate_per_core: np.ndarray
    load: np.ndarray
    capacity: np.ndarray
    min_cores: int
    max_cores: int
    multipliers: np.ndarray  # (L,) the knapsack bound's multipliers on served capacity, in accuracy units
    core_prices: np.ndarray  # (Q,) its prices per core, in accuracy x req/s units (ascending, from 0)
    knapsack: np.ndarray  # (L, Q, V, budget + 1): the bound's knapsack values (``_knapsack_bounds``)
    choices_by_previous: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, compare=False
    )

    @classmethod
    def build(cls, model: PlanningModel) -> _SearchTables:
        profile, budget = model.profile, model.budget_cores
        sizes = np.array([0, *range(profile.min_cores, model.max_cores + 1)])
        capacity = profile.per_replica_rps[:, sizes]  # (V, S)
        covering = np.maximum.accumulate(capacity, axis=1)
        candidates = []
        for v in range(model.n_variants):
            better = np.ones(sizes.size, dtype=bool)
            better[1:] = capacity[v, 1:] > covering[v, :-1]
            candidates.append((sizes[better], capacity[v, better]))
        cores = np.arange(budget + 1)
        rest = cores[:, None] - sizes[None, :]  # cores left for the other variants
        fits = rest >= 0
        rest = np.maximum(rest, 0)
        reach = np.empty((model.n_variants, budget + 1))
        most = np.zeros(budget + 1)
        for v in range(model.n_variants):
            most = np.where(fits, most[rest] + capacity[v], -np.inf).max(axis=1)
            reach[v] = most
        accuracy = np.sort(profile.accuracy)
        multipliers = np.unique(np.concatenate(([0.0], accuracy, (accuracy[1:] + accuracy[:-1]) / 2)))
        core_prices = np.concatenate(([0.0], np.geomspace(1e-3, 1e3, KNAPSACK_PRICES - 1)))
        return cls(
            sizes=sizes,
            candidates=tuple(candidates),
            covering=covering,
            reach=reach,
            rate_per_core=(capacity[:, 1:] / sizes[1:]).max(axis=1, initial=0.0),
            load=profile.load_time_s / profile.load_time_s.max(),
            capacity=profile.per_replica_rps,
            min_cores=profile.min_cores,
            max_cores=model.max_cores,
            multipliers=multipliers,
            core_prices=core_prices,
            knapsack=_knapsack_bounds(candidates, profile.accuracy, multipliers, core_prices, budget),
        )

    def choices(self, variant: int, previous: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sizes worth trying for ``variant`` coming from ``previous`` cores: cores, capacity and
        loading cost (normalised load time if started or resized, else 0). The previous size costs
        no load, so it stays a choice, and the sizes it makes pointless (more cores, no more
        capacity, a load) go."""
        key = (variant, previous)
        found = self.choices_by_previous.get(key)
        if found is not None:
            return found
        cores, capacity = self.candidates[variant]
        load = float(self.load[variant])
        if self.min_cores <= previous <= self.max_cores and self.capacity[variant, previous] > 0:
            kept = (cores < previous) | (capacity > self.capacity[variant, previous])
            cores = np.union1d(cores[kept], [previous])
            capacity = self.capacity[variant, cores]
            cost = np.where((cores > 0) & (cores != previous), load, 0.0)
        else:
            cost = np.where(cores > 0, load, 0.0)
        found = (cores, capacity, cost)
        self.choices_by_previous[key] = found
        return found


def _knapsack_bounds(
    candidates: list[tuple[np.ndarray, np.ndarray]],
    accuracy: np.ndarray,
    multipliers: np.ndarray,
    prices: np.ndarray,
    budget: int,
) -> np.ndarray:
    """``K[l, q, u, room]``: the most of ``sum_v (max(accuracy_v - multipliers[l], 0) * capacity_v
    - prices[q] * cores_v)`` over variants ``0..u`` within ``room`` cores (a knapsack over whole
    cores, each variant 0 or one of its candidate sizes). By Lagrangian duality on the served rate,
    serving a rest r from variants 0..u within ``room`` cores at a per-core price p earns at most
    ``multipliers[l] * r + K`` for any l, in accuracy x req/s units; K is convex and falling in the
    price, so between two tabled prices the chord bounds it (``_Plan.knapsack``)."""
    L, Q, R = multipliers.size, prices.size, budget + 1
    rooms = np.arange(R)
    out = np.empty((L, Q, len(candidates), R))
    most = np.zeros((L, Q, R + 1))
    most[:, :, R] = -np.inf  # where a size does not fit the room
    for v, (sizes, capacity) in enumerate(candidates):
        live = int(np.searchsorted(multipliers, accuracy[v]))  # multipliers below v's accuracy
        if live:
            rest = rooms[:, None] - sizes[None, :]
            rest[rest < 0] = R
            value = (accuracy[v] - multipliers[:live])[:, None, None] * capacity - prices[None, :, None] * sizes
            grown = most[:live][:, :, rest] + value[:, :, None, :]
            most[:live, :, :R] = grown.max(axis=3)
        out[:, :, v] = most[:, :, :R]
    return out


@lru_cache(maxsize=16)
def _search_tables(profile: CapacityProfile, budget_cores: int) -> _SearchTables:
    return _SearchTables.build(PlanningModel(profile, budget_cores))


@dataclass(frozen=True)
class Decision:
    """A solver's answer, with every term of the objective evaluated by ``infadapter_env.core.objective``."""

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
    if model.enumerable:
        return _enumerate(model, rate, previous, weights)
    return _branch_and_bound(model, rate, previous, weights)


def _enumerate(
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


class _Plan:
    """One decision's constants for branch and bound: per-unit values at this rate and weights."""

    def __init__(self, model: PlanningModel, rate: float, previous: tuple[int, ...], weights: Weights) -> None:
        tables = model.search_tables
        self.tables, self.rate, self.previous = tables, rate, previous
        self.n_variants, self.budget = model.n_variants, model.budget_cores
        self.gamma = weights.gamma
        self.per_core = weights.beta / model.budget_cores
        # objective per req/s served by each variant; the best of variants 0..u
        self.accuracy = weights.alpha / rate * model.profile.accuracy
        self.best_below = np.maximum.accumulate(self.accuracy)
        self.choices = [tables.choices(v, c) for v, c in enumerate(previous)]
        # The least loading cost of serving anything with variants 0..u: none if one of them can stay
        # as it is, else the shortest load time among them (a rest can only be served by starting one).
        stays = np.array(
            [(cores == c).any() and c > 0 for (cores, _, _), c in zip(self.choices, previous, strict=True)]
        )
        self.least_load = np.minimum.accumulate(np.where(stays, 0.0, tables.load))
        self.gain = [
            self.accuracy[v] * capacity - self.per_core * cores for v, (cores, capacity, _) in enumerate(self.choices)
        ]
        # Linear relaxation of serving a rest r from variants 0..u within `room` cores, each at most
        # rate_per_core req/s per core: by duality at most min over mu >= 0 of r * h_u(mu) + room * mu,
        # with h_u(mu) = max over v <= u of (profit_v - mu * cores_per_req_v). Any mu >= 0 gives a
        # bound; the minimum lies at mu = 0 or where two lines of h_u's upper envelope cross.
        usable = tables.rate_per_core > 0
        cores_per_req = np.divide(1.0, tables.rate_per_core, out=np.zeros(self.n_variants), where=usable)
        profit = np.where(usable, self.accuracy - self.per_core * cores_per_req, -np.inf)
        first, second = np.triu_indices(self.n_variants, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = (profit[first] - profit[second]) / (cores_per_req[first] - cores_per_req[second])
        crossing = np.isfinite(mu) & (mu > 0)
        first, second, mu = first[crossing], second[crossing], np.concatenate(([0.0], mu[crossing]))
        lines = np.where(usable[:, None], profit[:, None] - cores_per_req[:, None] * mu[None, :], -np.inf)
        envelope = np.maximum.accumulate(lines, axis=0)  # h_u at every crossing, u = 0..V-1
        at = np.arange(1, mu.size)
        low = envelope[:, 1:] - 1e-12 * (1.0 + np.abs(envelope[:, 1:]))
        on_top = (lines[first, at] >= low) & (lines[second, at] >= low)
        on_top &= second[None, :] <= np.arange(self.n_variants)[:, None]  # both lines among 0..u
        # per level u: the mu worth trying and h_u there (None where no variant 0..u serves anything)
        self.dual: list[tuple[np.ndarray, np.ndarray] | None] = []
        for u in range(self.n_variants):
            at = np.concatenate(([0], 1 + np.flatnonzero(on_top[u])))
            self.dual.append((mu[at], envelope[u, at]) if usable[: u + 1].any() else None)
        # The dual bound of a state s extended by choice c of variant v splits into a part of s and
        # a part of c, head_s(mu) + tail_c(mu): candidates are screened before they are built.
        self.knapsack_multipliers, self.knapsack = self._knapsack(
            weights.alpha / rate, self.per_core * rate / weights.alpha if weights.alpha > 0 else np.inf
        )
        self.tail: list[np.ndarray] = [np.zeros((1, 0))]
        for v in range(1, self.n_variants):
            below = self.dual[v - 1]
            cores, capacity, _ = self.choices[v]
            if below is not None:
                self.tail.append(self.gain[v] - below[1][:, None] * capacity - below[0][:, None] * cores)
            else:
                self.tail.append(np.zeros((1, 0)))

    def pairs(self) -> tuple[float, tuple[int, ...] | None]:
        """The best deployment of one or two variants: each size of the more accurate one, a, and
        the other, b, on the fewest cores that serve the rest (an incumbent for the search)."""
        tables, rate, V = self.tables, self.rate, self.n_variants
        width = max(c.size for c, _, _ in self.choices)
        cores = np.zeros((V, width), dtype=np.int64)
        capacity = np.zeros((V, width))
        cost = np.zeros((V, width))
        for a, (c, cap, lc) in enumerate(self.choices):
            cores[a, : c.size], capacity[a, : c.size], cost[a, : c.size] = c, cap, lc
        valid = cores > 0
        rest = rate - capacity
        alone = self.accuracy[:, None] * rate - self.per_core * cores - self.gamma * cost
        alone[~(valid & (rest <= 0))] = -np.inf
        at = np.stack([np.searchsorted(tables.covering[b], rest) for b in range(V)], axis=2)  # (a, size, b)
        size = tables.sizes[np.minimum(at, tables.sizes.size - 1)]
        ok = valid[:, :, None] & (rest[:, :, None] > 0) & (at < tables.sizes.size)
        ok &= np.tri(V, k=-1, dtype=bool)[:, None, :]  # b less accurate than a
        ok &= cores[:, :, None] + size <= self.budget
        load_b = np.where(size != np.asarray(self.previous)[None, None, :], tables.load[None, None, :], 0.0)
        both = (
            (self.accuracy[:, None] * capacity)[:, :, None]
            + self.accuracy[None, None, :] * rest[:, :, None]
            - self.per_core * (cores[:, :, None] + size)
            - self.gamma * np.maximum(cost[:, :, None], load_b)
        )
        both[~ok] = -np.inf
        k, j = int(np.argmax(alone)), int(np.argmax(both))
        deployment = [0] * V
        if alone.flat[k] == -np.inf and both.flat[j] == -np.inf:
            return -np.inf, None
        if alone.flat[k] >= both.flat[j]:
            a, i = divmod(k, width)
            deployment[a] = int(cores[a, i])
            return float(alone.flat[k]), tuple(deployment)
        first, size_at, second = (int(x) for x in np.unravel_index(j, both.shape))
        deployment[first], deployment[second] = int(cores[first, size_at]), int(size[first, size_at, second])
        return float(both.flat[j]), tuple(deployment)

    def _knapsack(self, scale: float, price: float) -> tuple[np.ndarray, np.ndarray]:
        """The knapsack bound at this decision's per-core price (``_knapsack_bounds``), in objective
        units: the multipliers (L,) and K (V, L, budget + 1), by the chord between the tabled prices
        around ``price`` (the last tabled price above them: a lower price only raises K). No
        multipliers (L = 0) where alpha is 0."""
        if not scale > 0 or not np.isfinite(price):
            return np.zeros(0), np.zeros((self.n_variants, 0, self.budget + 1))
        tables = self.tables
        prices = tables.core_prices
        above = int(np.searchsorted(prices, price, side="right"))  # prices[above - 1] <= price
        if above >= prices.size:
            table = tables.knapsack[:, -1]
        else:
            low, high = prices[above - 1], prices[above]
            t = (price - low) / (high - low)
            table = (1.0 - t) * tables.knapsack[:, above - 1] + t * tables.knapsack[:, above]
        # (V, L, budget + 1): one contiguous (multiplier, room) table per level u
        return scale * tables.multipliers, np.ascontiguousarray(scale * table.transpose(1, 0, 2))

    def search(
        self, best_value: float, best_cores: tuple[int, ...] | None, keep: int | None
    ) -> tuple[float, tuple[int, ...] | None]:
        """One pass over the variants, most accurate first; ``keep`` states per level (the dive),
        or every state no bound or dominance rules out. Returns the best deployment and its value,
        or ``(best_value, best_cores)`` if none beats them."""
        from infadapter_agents.planning import solver_kernels as kernels  # numba: only branch and bound needs it

        tables, rate, budget, gamma, per_core = self.tables, self.rate, self.budget, self.gamma, self.per_core
        V = self.n_variants
        used = np.zeros(1, dtype=np.int64)  # per state: cores, capacity, objective without LC, LC
        capacity = np.zeros(1)
        value = np.zeros(1)
        loading = np.zeros(1)
        trail: list[tuple[np.ndarray, np.ndarray]] = []  # per level: each kept state's parent and cores
        found: tuple[int, ...] | None = None  # (level, parent, cores) or (..., variant below, its cores)
        none = np.zeros(0)
        for level, v in enumerate(range(V - 1, -1, -1)):
            cores, more, cost = self.choices[v]
            u = v - 1
            below = self.dual[u] if v else None  # None: no variant left that could serve a rest
            mu, h = below if below is not None else (none, none)
            final, state, choice, parent, pick, total, reached, so_far, lc, bound = kernels.expand(
                (used, capacity, value, loading),  # ``solver_kernels.States``
                (cores, more, cost, self.gain[v]),  # ``Choices``
                (rate, budget, self.accuracy[v], per_core, gamma),  # ``Decision``
                best_value,
                below is not None,
                (  # ``RestBounds``
                    mu,
                    h,
                    self.tail[v] if below is not None else np.zeros((0, cores.size)),
                    self.least_load[u] if v else 0.0,
                    self.best_below[u] if v else 0.0,
                    tables.reach[u] if v else none,
                    self.knapsack[u] if v else np.zeros((0, 1)),
                    self.knapsack_multipliers,
                ),
            )
            if state >= 0:  # v is the last variant the rate reaches: it serves what is left
                best_value, found = final, (level, state, int(cores[choice]))
            if below is None:
                break
            if keep is not None or (found is None and best_cores is None):
                # complete each state with variant u alone at the fewest cores that serve the rest
                rest, room = rate - reached, budget - total
                at = np.searchsorted(tables.covering[u], rest)
                size = tables.sizes[np.minimum(at, tables.sizes.size - 1)]
                ok = (at < tables.sizes.size) & (size <= room)
                if ok.any():
                    load_u = np.where(size != self.previous[u], tables.load[u], 0.0)
                    guess = so_far + self.accuracy[u] * rest - per_core * size - gamma * np.maximum(lc, load_u)
                    guess[~ok] = -np.inf
                    k = int(np.argmax(guess))
                    if guess[k] > best_value:
                        best_value = float(guess[k])
                        found = (level, int(parent[k]), int(cores[pick[k]]), u, int(size[k]))
            alive = np.flatnonzero(bound >= best_value)
            if keep is not None and alive.size > keep:
                alive = alive[np.argsort(-bound[alive], kind="stable")[:keep]]
            elif alive.size > 1:
                slack = so_far[alive] - self.best_below[u] * reached[alive]
                alive = alive[kernels.undominated(total[alive], reached[alive], slack, gamma * lc[alive])]
            trail.append((parent[alive], cores[pick[alive]]))
            used, capacity, value, loading = total[alive], reached[alive], so_far[alive], lc[alive]
            if not alive.size:
                break
        if found is None:
            return best_value, best_cores
        deployment = [0] * V
        level, state, chosen = found[:3]
        deployment[V - 1 - level] = chosen
        if len(found) == 5:
            deployment[found[3]] = found[4]
        while level > 0:
            level -= 1
            parents, picked = trail[level]
            deployment[V - 1 - level] = int(picked[state])
            state = int(parents[state])
        return best_value, tuple(deployment)


def _branch_and_bound(
    model: PlanningModel, rate: float, previous: tuple[int, ...], weights: Weights
) -> tuple[int, ...] | None:
    from infadapter_agents.planning.solver_kernels import REACH_TOLERANCE

    if model.search_tables.reach[-1, -1] < rate * (1.0 - REACH_TOLERANCE):
        return None
    plan = _Plan(model, rate, previous, weights)
    dive = plan.search(*plan.pairs(), keep=DIVE_WIDTH)
    return plan.search(*dive, keep=None)[1]


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
