"""Aggregates of the leaderboard's rows: normalised scores, SLO attainment, and interval estimates
that resample windows.

**Scores.** Per (scenario, beta, seed) an agent's objective is normalised by the protocol's
normaliser (``NORMALISER``, the oracle, which plans with the coming interval's arrivals) on the same
episode: ``score = (objective - FLOOR) / (normaliser's objective - FLOOR)``, ``FLOOR = 0`` being the
objective of an empty cluster (nothing served, nothing paid: ``alpha x 0 - beta x 0 - gamma x 0``).
A score of 1 matches the oracle; above 1 beats it (the oracle plans, it is not an upper bound).
Normalising puts every window on one scale, so a hard window no longer weighs as a low score and the
IQM trims the agents' worst episodes rather than the hardest windows. Where the protocol has no
normaliser (``paper-2023``) the scores are the raw objective, and the summary says so. The rows keep
the raw objective.

**SLO attainment.** The P99 SLO holds where at most 1 % of requests were late or dropped
(``rollout.SLO_MET_LATE_SHARE``). Per episode: whether it held over the whole episode
(``slo_violation_pct`` at most 1) and the share of its decision intervals in which it held
(``intervals_slo_met_pct``). An agent *meets the SLO* when its mean interval attainment is at least
``ATTAINMENT_TOLERANCE``; the ranking lists the agents that meet it before those that do not, so no
agent ranks above another only by violating the SLO more.

**Uncertainty over windows.** Per beta the agents' scores form a runs (seeds) x tasks (scenarios) x
agents stack over the seeds and scenarios every agent played (``score_set``). Every interval is
rliable's stratified bootstrap with ``task_bootstrap=True`` (``library.get_interval_estimates``): each
resample draws the scenarios with replacement, the same draw for every agent (paired over windows),
and within each drawn scenario the seeds with replacement, for each agent on its own (seeds nested in
windows; rliable resamples runs per agent, which is conservative where, as here, a seed gives every
agent the same arrivals).
rliable is used rather than ``scipy.stats.bootstrap`` because it resamples on two levels (scipy's
resamples one axis of independent observations) and it is the RL community's reference for these
aggregates. Per agent: the IQM of its scores (rliable's ``aggregate_iqm``) with its interval; the
paired difference of every two agents' IQMs (the same resample for both), from which an order is
called only where the difference's interval excludes 0; the probability of improvement over the
reference agent (``REFERENCE_AGENT``; rliable's ``probability_of_improvement``: P(X > Y) per scenario
over pairs of seeds, ties counting one half, averaged over the scenarios); and the attainment means.
Bootstraps use ``BOOTSTRAP_REPS`` resamples from ``BOOTSTRAP_SEED`` (rliable 1.2 draws from NumPy's
global generator: it is seeded for each bootstrap and restored after). The statistics are vectorised
over the agents' axis; the tests hold them to rliable's own functions.

With one scenario (``paper-2023``) only the seeds are resampled: the summary says the intervals are
over seeds only.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infadapter_env.core.rollout import SLO_MET_LATE_SHARE

BOOTSTRAP_SEED = 2023
BOOTSTRAP_REPS = 2000
CI_LEVEL = 0.95
REFERENCE_AGENT = "infadapter"  # differences and probabilities of improvement are against this agent
NORMALISER = "oracle"  # the agent whose objective on the same episode scores 1
FLOOR = 0.0  # the objective of an empty cluster, which scores 0
ATTAINMENT_TOLERANCE = 0.95  # the mean share of intervals meeting the P99 SLO that an agent must reach
SCORE_COLUMN = "score"
OBJECTIVE_COLUMN = "objective"
EPISODE_MET_COLUMN = "episode_slo_met"  # 1.0 where the whole episode met the P99 SLO
INTERVALS_MET_COLUMN = "intervals_slo_met_pct"


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval over independent values (0 for
    a single value; NaN for both where a value is NaN, a metric the simulator does not measure). scipy
    gives the t quantile. (For figures of repeated runs of one scenario; the leaderboard's intervals
    are the window bootstrap's.)"""
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


# ----------------------------------------------------------------------------- scores per episode
def with_scores(results: pd.DataFrame, normaliser: str | None = NORMALISER, floor: float = FLOOR) -> pd.DataFrame:
    """The rows with the columns the aggregates read: ``score`` (the objective normalised by
    ``normaliser``'s on the same (scenario, beta, seed), see the module docstring; the raw objective
    where ``normaliser`` is None or played no row; NaN where the normaliser's objective is not above
    the floor or its episode is missing) and ``episode_slo_met`` (1.0 where the episode met the P99 SLO)."""
    out = results.copy()
    out[EPISODE_MET_COLUMN] = (out["slo_violation_pct"] <= 100 * SLO_MET_LATE_SHARE).astype(float)
    if normaliser is None or normaliser not in set(out["agent"]):
        out[SCORE_COLUMN] = out[OBJECTIVE_COLUMN]
        return out
    key = ["scenario", "beta", "seed"]
    reference = out[out["agent"] == normaliser].groupby(key)[OBJECTIVE_COLUMN].mean().rename("_normaliser")
    joined = out.join(reference, on=key)
    span = joined["_normaliser"] - floor
    out[SCORE_COLUMN] = ((joined[OBJECTIVE_COLUMN] - floor) / span).where(span > 0)
    return out


def normaliser_of(results: pd.DataFrame, normaliser: str | None = NORMALISER) -> str | None:
    """The agent the scores are normalised by, or None where they are the raw objective."""
    return normaliser if normaliser is not None and normaliser in set(results["agent"]) else None


# ----------------------------------------------------------------------------- the score matrices
@dataclass(frozen=True)
class ScoreSet:
    """The score matrices of one beta: per agent, runs (seeds) x tasks (scenarios), over the seeds
    and scenarios every agent played (in the same order for every agent, so that they stack).
    Scenarios or seeds some agent lacks, and agents with nothing in common with the others, are left
    out (and listed)."""

    beta: float
    column: str
    scenarios: tuple[str, ...]
    seeds: tuple[int, ...]
    matrices: dict[str, np.ndarray]
    left_out_scenarios: tuple[str, ...] = ()
    left_out_seeds: tuple[int, ...] = ()
    left_out_agents: tuple[str, ...] = ()

    @property
    def agents(self) -> list[str]:
        return list(self.matrices)

    def stacked(self) -> np.ndarray:
        """runs x tasks x agents, agents in ``agents`` order."""
        return np.stack([self.matrices[a] for a in self.matrices], axis=-1)


def score_set(results: pd.DataFrame, beta: float, column: str = SCORE_COLUMN) -> ScoreSet:
    """The matrices of ``column`` at ``beta`` (see ``ScoreSet``); agents, scenarios and seeds sorted.
    Values that are NaN (a score without the normaliser's episode) count as not played; a seed that
    misses a (scenario, agent) is left out for every agent."""
    at_beta = results[results["beta"] == beta]
    rows = at_beta[at_beta[column].notna()]
    played = rows.groupby("agent")["scenario"].agg(set)
    agents = list(played.index)
    scenarios = sorted(set.intersection(*played)) if agents else []
    cells = pd.MultiIndex.from_product([scenarios, agents], names=["scenario", "agent"])
    table = (
        rows[rows["scenario"].isin(scenarios)]
        .groupby(["seed", "scenario", "agent"])[column]
        .mean()
        .unstack(["scenario", "agent"])
        .reindex(columns=cells)
    )
    complete = table.dropna()
    seeds = tuple(int(seed) for seed in complete.index) if scenarios else ()
    matrices = (
        {agent: complete.xs(agent, axis=1, level="agent")[scenarios].to_numpy(dtype=float) for agent in agents}
        if seeds
        else {}
    )
    return ScoreSet(
        beta,
        column,
        tuple(scenarios) if seeds else (),
        seeds,
        matrices,
        tuple(sorted(set(rows["scenario"]) - set(scenarios if seeds else []))),
        tuple(sorted({int(seed) for seed in rows["seed"]} - set(seeds))),
        tuple(sorted(set(at_beta["agent"]) - set(matrices))),
    )


# ----------------------------------------------------------------------------- statistics (vectorised)
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


def iqm_differences(stacked: np.ndarray) -> np.ndarray:
    """IQM(agent i) - IQM(agent j) for every pair of a stack, flattened (agents x agents)."""
    point = iqm_per_agent(stacked)
    return (point[:, None] - point[None, :]).ravel()


def mean_per_agent(stacked: np.ndarray) -> np.ndarray:
    """The mean of every agent's runs x tasks slice."""
    return stacked.reshape(-1, stacked.shape[-1]).mean(axis=0)


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


# ----------------------------------------------------------------------------- the window bootstrap
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
    """A point estimate and its bootstrap confidence interval."""

    point: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def window_bootstrap(
    stacked: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``statistic`` of a runs x tasks x agents stack and its interval: rliable's
    ``get_interval_estimates`` with ``task_bootstrap=True`` (scenarios drawn with replacement, the same
    for every agent; seeds drawn within each drawn scenario), from ``seed``. Points, lower and upper
    bounds, each an array like the statistic's."""
    from rliable import library as rly

    with seeded(seed):
        points, intervals = rly.get_interval_estimates(
            {"x": stacked}, statistic, task_bootstrap=True, reps=reps, confidence_interval_size=level
        )
    point = np.asarray(points["x"], dtype=float)
    low, high = np.asarray(intervals["x"], dtype=float)
    # A degenerate bootstrap (every resample the same) can round the bounds off the point.
    return point, np.minimum(low, point), np.maximum(high, point)


def per_agent(agents: Sequence[str], point: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict[str, Interval]:
    return {a: Interval(float(point[k]), float(low[k]), float(high[k])) for k, a in enumerate(agents)}


def agent_intervals(
    scores: ScoreSet,
    statistic: Callable[[np.ndarray], np.ndarray],
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> dict[str, Interval]:
    """Per agent: ``statistic`` (one value per agent of a runs x tasks x agents stack) and its
    window-bootstrap interval."""
    if not scores.matrices:
        return {}
    return per_agent(scores.agents, *window_bootstrap(scores.stacked(), statistic, reps, seed, level))


def reference_intervals(
    scores: ScoreSet,
    reference: str,
    statistic: Callable[[np.ndarray, int], np.ndarray],
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> dict[str, Interval]:
    """Per agent other than ``reference``: ``statistic(stack, k)`` against the reference (slice ``k``
    of the stack) and its window-bootstrap interval; empty when ``reference`` is not in ``scores``."""
    if reference not in scores.matrices:
        return {}
    k = scores.agents.index(reference)
    out = agent_intervals(scores, lambda stack: statistic(stack, k), reps, seed, level)
    return {a: interval for a, interval in out.items() if a != reference}


def iqm_intervals(
    scores: ScoreSet, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED, level: float = CI_LEVEL
) -> dict[str, Interval]:
    """Per agent: the IQM of its scores and its window-bootstrap interval."""
    return agent_intervals(scores, iqm_per_agent, reps, seed, level)


def mean_intervals(
    values: ScoreSet, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED, level: float = CI_LEVEL
) -> dict[str, Interval]:
    """Per agent: the mean of its values (an attainment) and its window-bootstrap interval."""
    return agent_intervals(values, mean_per_agent, reps, seed, level)


def difference_intervals(
    scores: ScoreSet, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED, level: float = CI_LEVEL
) -> dict[tuple[str, str], Interval]:
    """Per ordered pair (a, b) of agents: IQM(a) - IQM(b) on the same resamples (paired over
    windows), and its interval."""
    if not scores.matrices:
        return {}
    agents = scores.agents
    point, low, high = window_bootstrap(scores.stacked(), iqm_differences, reps, seed, level)
    n = len(agents)
    return {
        (a, b): Interval(float(point[i * n + j]), float(low[i * n + j]), float(high[i * n + j]))
        for i, a in enumerate(agents)
        for j, b in enumerate(agents)
        if i != j
    }


def improvement_intervals(
    scores: ScoreSet,
    reference: str = REFERENCE_AGENT,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> dict[str, Interval]:
    """Per agent other than ``reference``: its probability of improvement over ``reference`` and its
    window-bootstrap interval; empty when ``reference`` is not in ``scores``."""
    return reference_intervals(scores, reference, lambda s, k: improvement_per_agent(s, s[..., k]), reps, seed, level)


def mean_difference_intervals(
    scores: ScoreSet,
    reference: str = REFERENCE_AGENT,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> dict[str, Interval]:
    """Per agent other than ``reference``: the mean of its scores less the reference's (the paired
    difference: the same episodes) and its window-bootstrap interval; empty without ``reference``."""

    def statistic(stack: np.ndarray, k: int) -> np.ndarray:
        means = mean_per_agent(stack)
        return means - means[k]

    return reference_intervals(scores, reference, statistic, reps, seed, level)


def performance_profiles(
    scores: ScoreSet,
    taus: np.ndarray,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    level: float = CI_LEVEL,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per agent: its score distribution at ``taus`` (rliable's ``create_performance_profile``) and
    the pointwise window-bootstrap interval's lower and upper bounds."""
    if not scores.matrices:
        return {}
    taus = np.asarray(taus, dtype=float)
    agents = scores.agents
    point, low, high = window_bootstrap(
        scores.stacked(), lambda s: score_distributions(s, taus).ravel(), reps, seed, level
    )
    shape = (len(agents), taus.size)
    point, low, high = (x.reshape(shape) for x in (point, low, high))
    return {a: (point[k], low[k], high[k]) for k, a in enumerate(agents)}


# ----------------------------------------------------------------------------- the ranking
def rank_ranges(order: Sequence[str], differences: dict[tuple[str, str], Interval]) -> dict[str, tuple[int, int]]:
    """Per agent of ``order`` (one group, best first) the ranks the paired differences allow: from 1 +
    the agents significantly above it to the group's size less those significantly below it ("a
    above b": the interval of IQM(a) - IQM(b) lies above 0)."""
    n = len(order)
    out = {}
    for agent in order:
        above = sum(differences[(other, agent)].low > 0 for other in order if other != agent)
        below = sum(differences[(agent, other)].low > 0 for other in order if other != agent)
        out[agent] = (1 + above, n - below)
    return out


def point_order(intervals: dict[str, Interval]) -> list[str]:
    """The agents by their point estimates, highest first (ties by name)."""
    return sorted(intervals, key=lambda a: (-intervals[a].point, a))


@dataclass(frozen=True)
class BetaAggregates:
    """Everything the summary reads at one beta."""

    scores: ScoreSet
    iqm: dict[str, Interval]
    differences: dict[tuple[str, str], Interval]
    improvement: dict[str, Interval]
    episodes_met: dict[str, Interval]  # the share of episodes that met the P99 SLO
    intervals_met: dict[str, Interval]  # the mean share of decision intervals that met it
    meets: tuple[str, ...]  # the agents whose interval attainment reaches ATTAINMENT_TOLERANCE, by IQM
    misses: tuple[str, ...]  # the others, by IQM
    ranks: dict[str, tuple[int, int]]
    reference: str
    normaliser: str | None

    @property
    def order(self) -> list[str]:
        return [*self.meets, *self.misses]

    def versus_reference(self, agent: str) -> Interval | None:
        """IQM(agent) - IQM(reference), or None."""
        return self.differences.get((agent, self.reference))


def beta_aggregates(
    results: pd.DataFrame,
    beta: float,
    reference: str = REFERENCE_AGENT,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    normaliser: str | None = NORMALISER,
    tolerance: float = ATTAINMENT_TOLERANCE,
) -> BetaAggregates:
    """The aggregates at ``beta`` (see the module docstring): scores normalised by ``normaliser``,
    intervals by the window bootstrap, agents meeting the SLO (``tolerance``) ranked before the others,
    each group by IQM with the ranks its paired differences allow."""
    scored = with_scores(results, normaliser)
    scores = score_set(scored, beta, SCORE_COLUMN)
    iqms = iqm_intervals(scores, reps, seed)
    differences = difference_intervals(scores, reps, seed)
    improvement = improvement_intervals(scores, reference, reps, seed)
    # Attainment over the same episodes as the scores.
    kept = scored[scored["scenario"].isin(scores.scenarios) & scored["seed"].isin(scores.seeds)]
    episodes_met = mean_intervals(score_set(kept, beta, EPISODE_MET_COLUMN), reps, seed)
    intervals_share = kept.assign(**{INTERVALS_MET_COLUMN: kept[INTERVALS_MET_COLUMN] / 100})
    intervals_met = mean_intervals(score_set(intervals_share, beta, INTERVALS_MET_COLUMN), reps, seed)
    by_iqm = point_order(iqms)
    meets = tuple(a for a in by_iqm if a in intervals_met and intervals_met[a].point >= tolerance)
    misses = tuple(a for a in by_iqm if a not in meets)
    ranks = rank_ranges(meets, differences)
    for agent, (low, high) in rank_ranges(misses, differences).items():
        ranks[agent] = (low + len(meets), high + len(meets))
    return BetaAggregates(
        scores,
        iqms,
        differences,
        improvement,
        episodes_met,
        intervals_met,
        meets,
        misses,
        ranks,
        reference,
        normaliser_of(results, normaliser),
    )
