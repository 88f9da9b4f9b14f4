"""Aggregates of the leaderboard's rows: Student-t intervals of seed means, and rliable's estimates.

rliable (Agarwal et al., "Deep RL at the edge of the statistical precipice", NeurIPS 2021) is used
as it is meant for RL benchmarks: per (agent, beta) a score matrix of the objective with one row per
run (seed) and one column per task (scenario), ``score_set``; then

- the interquartile mean (IQM: the mean of the middle 50 % of all runs x tasks scores) with a 95 %
  stratified-bootstrap confidence interval (seeds resampled within each scenario), ``iqm_intervals``;
- the probability of improvement of every agent over ``infadapter`` (P(X > Y) on a scenario, for a
  run of each drawn at random, ties counting one half, averaged over the scenarios), with the same
  kind of interval, ``improvement_intervals``;
- performance profiles (the share of runs x tasks whose objective exceeds tau, for every tau), with
  pointwise intervals, ``performance_profiles``.

The objective is already on one scale across scenarios (``alpha * accuracy - beta * cores share -
gamma * loading cost``), so it is not normalised further. Every interval is bootstrapped with
``BOOTSTRAP_REPS`` resamples from ``BOOTSTRAP_SEED`` (rliable 1.2 draws from NumPy's global
generator: it is seeded for each bootstrap and restored after). The agents of one beta with as many
runs are bootstrapped together, stacked as a third axis of rliable's strata (each agent's seeds are
still resampled independently, within each scenario), and the statistics are vectorised equivalents
of rliable's ``metrics.aggregate_iqm`` and ``metrics.probability_of_improvement`` (the tests hold
them equal): one bootstrap per agent with rliable's own statistics takes minutes for a full sweep.

With one seed the bootstrap has nothing to resample: the intervals are the points themselves.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

BOOTSTRAP_SEED = 2023
BOOTSTRAP_REPS = 2000
CI_LEVEL = 0.95
REFERENCE_AGENT = "infadapter"  # probabilities of improvement are of every agent over this one
SCORE_COLUMN = "objective"


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval over independent seeds (0 for
    a single value; NaN for both where a value is NaN, a metric the simulator does not measure). scipy
    gives the t quantile; with 5 seeds the interval is mean +- 2.78 s / sqrt(5)."""
    from scipy import stats

    n = len(values)
    if any(math.isnan(v) for v in values):
        return math.nan, math.nan
    mean = statistics.fmean(values)
    if n < 2:
        return mean, 0.0
    return mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(values) / n**0.5


def seed_means(results: pd.DataFrame, keys: list[str], column: str) -> pd.Series:
    """One value per seed and ``keys`` group: the mean of ``column`` over the scenarios of that seed."""
    return results.groupby([*keys, "seed"])[column].mean()


def rliable_version() -> str:
    from importlib.metadata import version

    return version("rliable")


@dataclass(frozen=True)
class ScoreSet:
    """The score matrices of one beta: per agent, runs (seeds) x tasks (scenarios).

    The tasks are the scenarios every agent at this beta played, so that aggregates compare like
    with like; an agent's runs are its seeds with a row on every task. Scenarios some agent lacks,
    and agents with no complete seed, are left out (and listed)."""

    beta: float
    column: str
    scenarios: tuple[str, ...]
    matrices: dict[str, np.ndarray]
    seeds: dict[str, tuple[int, ...]]
    left_out_scenarios: tuple[str, ...] = ()
    left_out_agents: tuple[str, ...] = ()

    @property
    def one_run(self) -> tuple[str, ...]:
        """The agents with one run only: their bootstrap intervals are points, which separate nothing."""
        return tuple(a for a, m in self.matrices.items() if m.shape[0] < 2)

    @property
    def single_run(self) -> bool:
        """Whether every agent has one run only (no interval separates anything: no order to call)."""
        return len(self.one_run) == len(self.matrices)


def score_set(results: pd.DataFrame, beta: float, column: str = SCORE_COLUMN) -> ScoreSet:
    """The score matrices of ``column`` at ``beta`` (see ``ScoreSet``); agents and scenarios sorted."""
    rows = results[results["beta"] == beta]
    played = rows.groupby("agent")["scenario"].agg(set)
    everywhere = set.intersection(*played) if len(played) else set()
    scenarios = tuple(sorted(everywhere))
    left_out_scenarios = tuple(sorted(set(rows["scenario"]) - everywhere))
    table = rows[rows["scenario"].isin(everywhere)].groupby(["agent", "seed", "scenario"])[column].mean().unstack()
    matrices, seeds, left_out_agents = {}, {}, []
    for agent in sorted(played.index):
        if not scenarios or agent not in table.index.get_level_values("agent"):
            left_out_agents.append(agent)
            continue
        own = table.loc[agent].reindex(columns=list(scenarios)).dropna()
        if own.empty:
            left_out_agents.append(agent)
            continue
        matrices[agent] = own.to_numpy(dtype=float)
        seeds[agent] = tuple(int(s) for s in own.index)
    return ScoreSet(beta, column, scenarios, matrices, seeds, left_out_scenarios, tuple(left_out_agents))


def iqm(scores: np.ndarray) -> float:
    """The interquartile mean of all scores: ``scipy.stats.trim_mean(scores, 0.25, axis=None)``, as
    rliable's ``metrics.aggregate_iqm``."""
    return float(iqm_per_agent(np.asarray(scores, dtype=float)[..., None])[0])


def iqm_per_agent(stacked: np.ndarray) -> np.ndarray:
    """``iqm`` of every agent's runs x tasks slice of a runs x tasks x agents stack, with one partition."""
    flat = stacked.reshape(-1, stacked.shape[-1])
    n = flat.shape[0]
    cut = int(0.25 * n)
    kept = np.partition(flat, (cut, n - cut - 1), axis=0)[cut : n - cut]
    return np.mean(kept, axis=0)


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 per task over every pair of a run of X and a run of Y, averaged over the
    tasks: rliable's ``metrics.probability_of_improvement`` (the Mann-Whitney U statistic per task
    over the product of the run counts)."""
    return float(improvement_per_agent(np.asarray(scores_x, dtype=float)[..., None], scores_y)[0])


def improvement_per_agent(stacked: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``probability_of_improvement`` of every agent of a runs x tasks x agents stack over the
    ``reference`` runs x tasks matrix, on every task at once."""
    x, y = stacked[:, None, :, :], np.asarray(reference, dtype=float)[None, :, :, None]
    per_task = np.mean((x > y) + 0.5 * (x == y), axis=(0, 1))  # tasks x agents
    return np.mean(per_task, axis=0)


def score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """The share of runs x tasks with a score above each tau: rliable's ``score_distributions``."""
    return score_distributions(np.asarray(scores, dtype=float)[..., None], taus)[0]


def score_distributions(stacked: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """``score_distribution`` of every agent of a runs x tasks x agents stack: agents x taus."""
    flat = stacked.reshape(-1, stacked.shape[-1])
    return np.mean(flat[:, :, None] > np.asarray(taus, dtype=float)[None, None, :], axis=0)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """NumPy's global generator seeded with ``seed`` (rliable 1.2's bootstrap draws from it), then restored."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap confidence interval; ``runs``: the fewest runs it came from."""

    point: float
    low: float
    high: float
    runs: int

    def above(self, other: Interval) -> bool:
        """Whether this interval lies wholly above ``other`` (both from at least two runs)."""
        return self.runs > 1 and other.runs > 1 and self.low > other.high


def by_runs(matrices: dict[str, np.ndarray]) -> dict[int, list[str]]:
    """The agents grouped by their number of runs (each group is bootstrapped as one stack)."""
    groups: dict[int, list[str]] = {}
    for agent, matrix in matrices.items():
        groups.setdefault(matrix.shape[0], []).append(agent)
    return dict(sorted(groups.items()))


def _bootstrap(data: np.ndarray | list[np.ndarray], statistic, reps: int, seed: int, level: float):
    """rliable's ``get_interval_estimates`` of ``statistic`` on ``data`` from ``seed``: points and
    (lower, upper) bounds, each an array."""
    from rliable import library as rly

    with seeded(seed):
        points, intervals = rly.get_interval_estimates(
            {"x": data}, statistic, reps=reps, confidence_interval_size=level
        )
    point = np.asarray(points["x"], dtype=float)
    low, high = np.asarray(intervals["x"], dtype=float)
    # A degenerate bootstrap (every resample the same) can round the bounds off the point.
    return point, np.minimum(low, point), np.maximum(high, point)


def iqm_intervals(
    scores: ScoreSet, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED, level: float = CI_LEVEL
) -> dict[str, Interval]:
    """Per agent: the IQM of its score matrix and its stratified-bootstrap interval (rliable's
    ``get_interval_estimates``: seeds resampled within each scenario, independently for each
    agent: the agents with as many runs are stacked as a third axis of strata, one bootstrap)."""
    out: dict[str, Interval] = {}
    for runs, agents in by_runs(scores.matrices).items():
        stacked = np.stack([scores.matrices[a] for a in agents], axis=-1)
        point, low, high = _bootstrap(stacked, iqm_per_agent, reps, seed, level)
        out |= {a: Interval(float(point[k]), float(low[k]), float(high[k]), runs) for k, a in enumerate(agents)}
    return {a: out[a] for a in scores.matrices}


def improvement_intervals(
    scores: ScoreSet,
    reference: str = REFERENCE_AGENT,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> dict[str, Interval]:
    """Per agent other than ``reference``: its probability of improvement over ``reference`` and
    the interval of rliable's independent stratified bootstrap (the agents' and the reference's
    seeds resampled independently within each scenario); empty when ``reference`` is not in ``scores``."""
    if reference not in scores.matrices:
        return {}
    theirs = scores.matrices[reference]
    others = {a: m for a, m in scores.matrices.items() if a != reference}
    out: dict[str, Interval] = {}
    for runs, agents in by_runs(others).items():
        stacked = np.stack([others[a] for a in agents], axis=-1)
        point, low, high = _bootstrap([stacked, theirs], improvement_per_agent, reps, seed, level)
        fewest = min(runs, theirs.shape[0])
        out |= {a: Interval(float(point[k]), float(low[k]), float(high[k]), fewest) for k, a in enumerate(agents)}
    return {a: out[a] for a in others}


def performance_profiles(
    scores: ScoreSet,
    taus: np.ndarray,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per agent: its score distribution at ``taus`` (rliable's ``create_performance_profile``, with
    the agents of as many runs stacked as above) and the pointwise interval's lower and upper bounds."""
    from rliable import library as rly

    taus = np.asarray(taus, dtype=float)
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for agents in by_runs(scores.matrices).values():
        stacked = np.stack([scores.matrices[a] for a in agents], axis=-1)
        with seeded(seed):
            profiles, cis = rly.create_performance_profile(
                {"x": stacked},
                taus,
                custom_profile_func=lambda s, t: score_distributions(s, t).ravel(),
                reps=reps,
                confidence_interval_size=level,
            )
        shape = (len(agents), taus.size)
        point = np.asarray(profiles["x"]).reshape(shape)
        low, high = (np.asarray(b).reshape(shape) for b in cis["x"])
        out |= {
            a: (point[k], np.minimum(low[k], point[k]), np.maximum(high[k], point[k])) for k, a in enumerate(agents)
        }
    return {a: out[a] for a in scores.matrices}


def rank_ranges(intervals: dict[str, Interval]) -> dict[str, tuple[int, int]]:
    """Per agent the ranks its interval allows: from 1 + the agents wholly above it to the number of
    agents less those wholly below it. One number where the intervals separate it from every
    other agent; ``(1, n)`` for every agent with one run (its interval says nothing)."""
    n = len(intervals)
    out = {}
    for agent, mine in intervals.items():
        above = sum(other.above(mine) for name, other in intervals.items() if name != agent)
        below = sum(mine.above(other) for name, other in intervals.items() if name != agent)
        out[agent] = (1 + above, n - below)
    return out


def point_order(intervals: dict[str, Interval]) -> list[str]:
    """The agents by their point estimates, highest first (ties by name)."""
    return sorted(intervals, key=lambda a: (-intervals[a].point, a))


@dataclass(frozen=True)
class BetaAggregates:
    """Everything rliable gives at one beta: the scores, IQMs, probabilities of improvement, ranks."""

    scores: ScoreSet
    iqm: dict[str, Interval]
    improvement: dict[str, Interval]
    ranks: dict[str, tuple[int, int]]
    reference: str


def beta_aggregates(
    results: pd.DataFrame,
    beta: float,
    reference: str = REFERENCE_AGENT,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    column: str = SCORE_COLUMN,
) -> BetaAggregates:
    """The aggregates of ``column`` at ``beta`` (``score_set``, ``iqm_intervals``,
    ``improvement_intervals``, ``rank_ranges``)."""
    scores = score_set(results, beta, column)
    intervals = iqm_intervals(scores, reps, seed)
    improvement = improvement_intervals(scores, reference, reps, seed)
    return BetaAggregates(scores, intervals, improvement, rank_ranges(intervals), reference)
