"""The fast simulator (``simulator="fast"``, the default): fluid queues per 1 s tick with calibrated
latencies, for N environments at once in array operations (the scalar env is N = 1).

Per tick and variant (``cap``: capacity at the SLO from the profile, which the dispatcher uses;
``mu``: what the servers complete per second, replicas x workers / mean service time from the
calibrated service model; ``q``: requests waiting):

1. the dispatcher splits the tick's arrivals: ``accuracy_first`` gives each variant, most accurate
   first, up to ``cap``; ``proportional`` splits in proportion to ``cap``, ``quota`` in proportion
   to the round robin's integer quotas (``round(cap)``, or the ones the controller set: its planned
   ones route from the second every load is done, ``QuotaPlan``);
2. a variant admits at most ``queue_factor x cap + mu - q`` requests in the tick (its queue bound,
   plus what it completes meanwhile); under ``accuracy_first`` what one variant cannot admit goes
   to the next with room, most accurate first; the rest is dropped;
3. the queue evolves as ``q <- max(q + admitted - mu, 0)``; a request admitted a fraction ``x`` into
   the tick has ``max(q + (admitted - mu) x, 0)`` requests ahead of it (x = 1/4 and 3/4) and waits
   for them: that many over ``mu``, spread (three Gauss-Hermite points) by the wandering of one
   replica's queue around the fluid one (a diffusion fed by Poisson arrivals and random service,
   within what its drift allows, ``backlog_var``: the drift of a full queue counts every request
   offered to it and refused), by the random share of the queue a replica holds (requests pick one
   of R replicas at random: variance n (1 - 1/R) for n ahead per replica) and by the randomness of
   its completions (service-time CV c: variance n c^2);
   then comes the server's steady-state latency under Poisson arrivals, read from
   ``profiles/latency_quantiles.npz`` at the utilisation of the last 10 s made effective for the
   burstiness of what the server really receives (``_effective_rho``; behind a queue: the service
   time alone);
4. a request violates the SLO when that latency exceeds the SLO (or it is dropped).

Per interval and variant the P50/P99 latency is the quantile of the mixture of the ticks' latency
distributions, read from a log-binned histogram of every 5-tick group's latency quantiles at
``ATOM_LEVELS`` (shifted by its waits where queues form): a variant serving a few percent of the
requests enters the overall P99 with the body of its distribution. Loading,
rolling updates and make-before-break follow ``deploy``. ``tests/test_fast_vs_request.py`` and
``scripts/validate_fast.py`` hold this model to the request-level simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from infadapter_env.profiles import CapacityProfile, shipped_world
from infadapter_env.reductions import row_any, row_max, row_sum, sum_after

DISPATCHERS = ("accuracy_first", "proportional", "quota")
RHO_STEP = 0.005
RHO_MAX = 0.99
THRESHOLD_STEPS = 64  # the over-SLO table's remaining-budget grid: SLO x j / 64
WAIT_POINTS = (0.25, 0.75)  # where in a tick the fluid wait of its admitted requests is read
# A replica's queue around the fluid one: three-point Gauss-Hermite nodes (standard deviations) and weights.
QUEUE_SPREAD = ((-(3**0.5), 1 / 6), (0.0, 2 / 3), (3**0.5, 1 / 6))
UTILISATION_WINDOW_S = 10  # the latency tables are read at the utilisation averaged over this window
# Cumulative levels of the latency atoms from which interval quantiles are taken on the tick path.
ATOM_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.85, 0.93, 0.96, 0.98, 0.99, 0.995, 0.998, 0.999)
# Latency histogram for those quantiles: log-spaced bins from 1 ms to 100 s (7.5 % wide). Its atoms
# come from groups of this many ticks (their waits averaged), which costs a fifth of per-tick atoms.
QUANTILE_GROUP_S = 5
BIN_LOW_S, BIN_HIGH_S, N_BINS = 1e-3, 100.0, 160


@dataclass(frozen=True, slots=True)
class ClusterState:
    """What N clusters run, per variant (arrays (N, V)): the target deployment, what serves now,
    the seconds until the target serves, and the waiting requests."""

    replicas: np.ndarray  # target replicas (int)
    cores: np.ndarray  # target cores per replica (int)
    serving_replicas: np.ndarray  # (int)
    serving_cores: np.ndarray  # (int)
    loading_left_s: np.ndarray
    backlog: np.ndarray
    backlog_var: np.ndarray  # variance of one replica's queue around the fluid one (requests^2)

    def select(self, rows: np.ndarray) -> ClusterState:
        return ClusterState(*(getattr(self, f)[rows] for f in self.__slots__))  # type: ignore[attr-defined]

    def put(self, rows: np.ndarray, part: ClusterState) -> ClusterState:
        """This state with ``rows`` replaced by ``part``."""
        out = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            column = getattr(self, name).copy()
            column[rows] = getattr(part, name)
            out[name] = column
        return ClusterState(**out)


def empty_state(n_envs: int, n_variants: int) -> ClusterState:
    ints = np.zeros((n_envs, n_variants), dtype=np.int64)
    zeros = np.zeros((n_envs, n_variants))
    return ClusterState(ints, ints, ints, ints, zeros, zeros.copy(), zeros.copy())


def loaded_state(replicas: np.ndarray, cores: np.ndarray) -> ClusterState:
    """A deployment (N, V) already loaded and serving, with empty queues."""
    zeros = np.zeros(replicas.shape)
    return ClusterState(replicas, cores, replicas.copy(), cores.copy(), zeros, zeros.copy(), zeros.copy())


@dataclass(frozen=True, slots=True)
class IntervalResult:
    """What happened in one interval in N environments (counts are requests)."""

    arrivals: np.ndarray  # (N,)
    peak_rate_rps: np.ndarray  # (N,)
    in_slo: np.ndarray  # (N, V) served within the SLO
    served: np.ndarray  # (N, V) admitted and served (in or over the SLO)
    over_slo: np.ndarray  # (N,) served with a latency over the SLO
    dropped: np.ndarray  # (N,) turned away (full queues, nothing serving)
    lost: np.ndarray  # (N,) waiting requests discarded when their variant stopped (already counted)
    busy: np.ndarray  # (N, V) fraction of the serving capacity (mu) used
    p50_ms: np.ndarray  # (N, V) 0 where a variant served nothing
    p99_ms: np.ndarray  # (N, V)
    p50_ms_all: np.ndarray  # (N,)
    p99_ms_all: np.ndarray  # (N,)


@dataclass(frozen=True)
class QuotaPlan:
    """The ``quota`` dispatcher's quotas of N environments, arrays (N, V) in req/s; a row of NaN
    means none set (the round robin then runs over ``round(cap)``). ``current`` route from the
    interval's start; ``planned`` (set with the step's deployment) replace them from the second
    every load is done, as the original adapter posts new quotas only after the new pods are ready."""

    current: np.ndarray
    planned: np.ndarray

    @staticmethod
    def switch_tick(loading_left_s: np.ndarray) -> np.ndarray:
        """(N,) the second of the interval from which the planned quotas route."""
        return np.ceil(row_max(loading_left_s))

    def effective(self, switched: np.ndarray) -> np.ndarray:
        """The quotas (N, V) that route once ``switched`` (bool, broadcast) says the switch happened."""
        planned_set = ~np.isnan(self.planned).all(axis=-1, keepdims=True)
        return np.where(switched & planned_set, self.planned, self.current)

    def per_tick(self, loading_left_s: np.ndarray, n_ticks: int) -> np.ndarray:
        """(T, N, V): the quotas routing each second of the interval."""
        switched = np.arange(n_ticks)[:, None, None] >= self.switch_tick(loading_left_s)[None, :, None]
        return self.effective(switched)

    def select(self, rows: np.ndarray) -> QuotaPlan:
        return QuotaPlan(self.current[rows], self.planned[rows])

    @classmethod
    def unset(cls, n_envs: int, n_variants: int) -> QuotaPlan:
        """No quotas routing, none planned."""
        return cls(np.full((n_envs, n_variants), np.nan), np.full((n_envs, n_variants), np.nan))

    @property
    def is_unset(self) -> bool:
        return bool(np.isnan(self.current).all() and np.isnan(self.planned).all())

    def plan(self, planned: np.ndarray) -> QuotaPlan:
        """This plan with ``planned`` (N, V) as the quotas to route once the loads in progress are done."""
        return QuotaPlan(self.current, planned)

    def after(self, loading_left_s: np.ndarray) -> QuotaPlan:
        """The plan at the end of an interval that left ``loading_left_s`` (N, V): where every load
        is done the planned quotas route, and nothing is planned any more."""
        switched = ~row_any(loading_left_s)[:, None]
        return QuotaPlan(self.effective(switched), np.where(switched, np.nan, self.planned))


@dataclass(frozen=True, eq=False)
class ServerTables:
    """What the fast model reads per (variant, cores): capacities, service rates and latency tables
    at one SLO (``over[v, c, rho, j]`` = P(latency > SLO x j / 64))."""

    slo_s: float
    capacity_rps: np.ndarray  # (V, C+1) per replica, at the SLO
    service_rps: np.ndarray  # (V, C+1) per replica
    service_cv: np.ndarray  # (V, C+1) coefficient of variation of the service time
    load_time_s: np.ndarray  # (V,)
    n_rho: int  # R, points of the utilisation grid
    # Flattened (V, C+1, R[, J+1]) tables, so that a lookup is one ``take``:
    over: np.ndarray  # P(latency > SLO x j / 64)
    atoms_s: np.ndarray  # (V x (C+1) x R, len(ATOM_LEVELS)) latency quantiles at ATOM_LEVELS
    atom_mass: np.ndarray  # (len(ATOM_LEVELS),) probability each atom stands for


@lru_cache(maxsize=16)
def server_tables(profile: CapacityProfile) -> ServerTables:
    """The tables of ``profile``'s variants at its SLO (cached per profile)."""
    world = profile.world or shipped_world()
    service = world.service_model
    table = world.latency_table
    fine = np.arange(0.0, RHO_MAX + 1e-9, RHO_STEP)
    grid = np.clip(fine, table.rho[0], table.rho[-1])
    # Quantiles on the fine utilisation grid, linear between the simulated points.
    upper = np.clip(np.searchsorted(table.rho, grid), 1, table.rho.size - 1)
    weight = (grid - table.rho[upper - 1]) / (table.rho[upper] - table.rho[upper - 1])
    q = table.quantile_s
    q_fine = q[:, :, upper - 1] * (1 - weight)[None, None, :, None] + q[:, :, upper] * weight[None, None, :, None]
    q_fine = np.maximum.accumulate(q_fine, axis=-1)  # quantiles never decrease with the level
    levels = table.levels
    slo_s = profile.slo_ms / 1000.0

    def level(p: float) -> int:
        return int(np.flatnonzero(np.isclose(levels, p))[0])

    thresholds = slo_s * np.arange(THRESHOLD_STEPS + 1) / THRESHOLD_STEPS
    over = np.stack([tail_probability(q_fine, levels, x) for x in thresholds], axis=-1)
    rates = service.service_rps[: len(profile.variants)]
    over_f = np.ascontiguousarray(over).reshape(-1)
    atoms = np.ascontiguousarray(q_fine[..., [level(p) for p in ATOM_LEVELS]]).reshape(-1, len(ATOM_LEVELS))
    edges = np.concatenate([[0.0], (np.array(ATOM_LEVELS[:-1]) + np.array(ATOM_LEVELS[1:])) / 2, [1.0]])
    mass = np.diff(edges)
    for array in (over_f, atoms, mass):
        array.setflags(write=False)
    return ServerTables(
        slo_s=slo_s,
        capacity_rps=profile.per_replica_rps,
        service_rps=rates,
        service_cv=service.service_cv[: len(profile.variants)],
        load_time_s=profile.load_time_s,
        n_rho=q_fine.shape[2],
        over=over_f,
        atoms_s=atoms,
        atom_mass=mass,
    )


def tail_probability(quantiles: np.ndarray, levels: np.ndarray, x: float) -> np.ndarray:
    """P(latency > x) from quantiles (..., L) at cumulative ``levels``: linear between stored
    quantiles, from 0 at latency 0 to the first, exponential beyond the last."""
    below = (quantiles <= x).sum(axis=-1)
    n = levels.size
    lower_q = np.where(below > 0, np.take_along_axis(quantiles, np.maximum(below - 1, 0)[..., None], -1)[..., 0], 0.0)
    lower_p = np.where(below > 0, levels[np.maximum(below - 1, 0)], 0.0)
    upper_q = np.take_along_axis(quantiles, np.minimum(below, n - 1)[..., None], -1)[..., 0]
    upper_p = levels[np.minimum(below, n - 1)]
    span = np.maximum(upper_q - lower_q, 1e-12)
    inside = lower_p + (upper_p - lower_p) * np.clip((x - lower_q) / span, 0.0, 1.0)
    last_scale = np.maximum(quantiles[..., -1] - quantiles[..., -2], 1e-9) / np.log((1 - levels[-2]) / (1 - levels[-1]))
    beyond = 1.0 - (1 - levels[-1]) * np.exp(-np.maximum(x - quantiles[..., -1], 0.0) / last_scale)
    cdf = np.where(below >= n, beyond, inside)
    return 1.0 - cdf


def deploy(state: ClusterState, replicas: np.ndarray, cores: np.ndarray, load_time_s: np.ndarray) -> ClusterState:
    """Apply new target deployments (N, V).

    Unchanged variants keep their state. Started or resized variants load for their load time while
    the previous deployment serves. Removed variants serve until every variant started or resized by
    the same decision is ready (make before break), or stop at once if there is none.
    """
    active = (replicas > 0) & (cores > 0)
    replicas = np.where(active, replicas, 0)
    cores = np.where(active, cores, 0)
    changed = (replicas != state.replicas) | (cores != state.cores)
    if not changed.any():
        return state
    starting = changed & active
    handover_s = row_max(np.where(starting, load_time_s, 0.0))[:, None]
    loading = np.where(starting, load_time_s, np.where(changed, handover_s, state.loading_left_s))
    return ClusterState(
        replicas, cores, state.serving_replicas, state.serving_cores, loading, state.backlog, state.backlog_var
    )


def simulate_interval(
    state: ClusterState,
    per_tick: np.ndarray,
    tables: ServerTables,
    dispatcher: str = "accuracy_first",
    queue_factor: float = 1.25,
    quotas: QuotaPlan | None = None,
) -> tuple[ClusterState, IntervalResult]:
    """One interval of ``per_tick`` arrivals (N, T) from ``state``; a pure function. ``quotas``: the
    ``quota`` dispatcher's quotas set by the controller (None: ``round(cap)``)."""
    n_env = per_tick.shape[0]
    variant = np.arange(state.cores.shape[1])
    cap = state.serving_replicas * tables.capacity_rps[variant, state.serving_cores]
    mu = state.serving_replicas * tables.service_rps[variant, state.serving_cores]
    peak = per_tick.max(axis=1)
    steady = ~row_any(state.loading_left_s) & ~row_any(state.backlog) & (peak <= row_sum(cap)) & ~row_any(cap > mu)
    if dispatcher != "quota":
        quotas = None
    settled = None  # without loads the planned quotas route from the first second
    if quotas is not None:
        settled = quotas.effective(np.ones((n_env, 1), dtype=bool))
        steady &= ~row_any(_split(peak[:, None], cap, dispatcher, settled) > cap + 1e-9)  # a quota above cap queues
    if steady.all():
        return state, _steady(state, per_tick, cap, mu, peak, tables, dispatcher, settled)
    moving = np.flatnonzero(~steady)
    moved_quotas = None if quotas is None else quotas.select(moving)
    moved_state, moved = _ticks(state.select(moving), per_tick[moving], tables, dispatcher, queue_factor, moved_quotas)
    if not steady.any():
        return moved_state, moved
    calm = np.flatnonzero(steady)
    calm_quotas = None if settled is None else settled[calm]
    still = _steady(
        state.select(calm), per_tick[calm], cap[calm], mu[calm], peak[calm], tables, dispatcher, calm_quotas
    )
    fields = {}
    for name in IntervalResult.__slots__:  # type: ignore[attr-defined]
        part = getattr(moved, name)
        column = np.empty((n_env, *part.shape[1:]), dtype=part.dtype)
        column[moving] = part
        column[calm] = getattr(still, name)
        fields[name] = column
    return state.put(moving, moved_state), IntervalResult(**fields)


def _split(rate: np.ndarray, cap: np.ndarray, dispatcher: str, quotas: np.ndarray | None = None) -> np.ndarray:
    """The dispatcher's split of arrivals ``rate`` (..., 1) over capacities ``cap`` (..., V);
    ``quotas`` (N, V) broadcast against ``cap`` from the right (the ``quota`` dispatcher only)."""
    if dispatcher == "accuracy_first":
        return np.clip(rate - sum_after(cap), 0.0, cap)
    weight = cap
    if dispatcher == "quota":  # the round robin's integer quotas, over the variants that serve
        weight = np.rint(cap)
        if quotas is not None:  # set quotas (NaN: none); where no serving variant has one, round(cap)
            given = np.where(cap > 0, np.rint(np.nan_to_num(quotas, nan=0.0)), 0.0)
            weight = np.where(given.sum(axis=-1, keepdims=True) > 0, given, weight)
    total = weight.sum(axis=-1, keepdims=True)
    return rate * weight / np.maximum(total, 1e-300)


def _steady(state, per_tick, cap, mu, peak, tables, dispatcher, quotas=None) -> IntervalResult:
    """No loading, no queue, every tick within the capacity: all ticks at once, variant-major
    (N, V, T) so that reductions run along the contiguous axis."""
    rate = per_tick[:, None, :]
    quotas = None if quotas is None else quotas[:, None, :]
    admitted = np.ascontiguousarray(
        np.moveaxis(_split(per_tick[:, :, None], cap[:, None, :], dispatcher, quotas), 2, 1)
    )
    rho = _recent_mean(admitted) / np.maximum(mu[:, :, None], 1e-12)
    # One replica's share of the arrivals (replicas are picked at random), and its throughput.
    replicas = np.maximum(state.serving_replicas, 1)[:, :, None]
    share = _recent_mean(admitted) / np.maximum(_recent_mean(np.broadcast_to(rate, admitted.shape)), 1e-12)
    cv2 = (tables.service_cv[np.arange(cap.shape[1]), state.serving_cores] ** 2)[:, :, None]
    rho = _effective_rho(rho, share / replicas, cv2, mu[:, :, None] / replicas)
    served = admitted.sum(axis=-1)
    busy = served / np.maximum(mu * per_tick.shape[1], 1e-12)
    zeros = np.zeros(per_tick.shape[0])
    return _score(
        per_tick.sum(axis=1),
        peak,
        admitted,
        None,
        rho,
        state.serving_cores[:, :, None],
        tables,
        served,
        zeros,
        zeros,
        busy,
    )


def _effective_rho(rho, share, cv2, mu_replica):
    """The utilisation at which Poisson arrivals (what the latency tables hold) queue as much as the
    stream a server really gets: a random ``share`` of each second's count, which the trace fixes.

    Kingman: the wait scales with (ca^2 + cs^2) / 2. Over windows shorter than a second the stream is
    Poisson-like (ca^2 = 1: random times); over a second or more its counts vary only by the random
    share (ca^2 = 1 - share). The queue remembers about ``1 / (mu (1 - sqrt(rho))^2)`` seconds, which
    weighs the two. The table is then read where rho / (1 - rho) is scaled by the same factor."""
    rho = np.minimum(rho, RHO_MAX)
    relax_s = 1.0 / np.maximum(mu_replica * (1.0 - np.sqrt(rho)) ** 2, 1e-9)
    ca2 = 1.0 - share * relax_s / (relax_s + 1.0)
    factor = (ca2 + cv2) / (1.0 + cv2)
    g = factor * rho / (1.0 - rho)
    return g / (1.0 + g)


def _recent_mean(per_tick: np.ndarray, window: int = UTILISATION_WINDOW_S) -> np.ndarray:
    """Mean over the last ``window`` ticks of the interval (fewer at its start) along the last axis.

    A queue needs time to reach its steady state (about service / (1 - rho)^2: 9 s for ResNet50
    at 90 %), so a one-second burst does not bring the steady-state tail of its rate."""
    total = np.cumsum(per_tick, axis=-1)
    if total.shape[-1] > window:
        total[..., window:] -= total[..., :-window].copy()
    return total / np.minimum(np.arange(1, per_tick.shape[-1] + 1), window)


def _ticks(
    state, per_tick, tables, dispatcher, queue_factor, quotas: QuotaPlan | None = None
) -> tuple[ClusterState, IntervalResult]:
    """Tick by tick, with queues and loads finishing inside the interval: the fluid recurrence runs
    tick by tick, then every tick's latencies are read at once. Kept in one piece (89 lines): the
    dozen per-tick arrays the recurrence makes are read, reshaped and reduced together, and a split
    would only pass them all between the pieces."""
    n_env, n_ticks = per_tick.shape
    n_var = state.cores.shape[1]
    variant = np.arange(n_var)
    ready_tick = np.ceil(state.loading_left_s)
    # What serves at each tick (T, N, V): the target from the second its load finishes.
    switched = ready_tick[None] <= np.arange(n_ticks)[:, None, None]
    replicas_t = np.where(switched, state.replicas, state.serving_replicas)
    cores_t = np.where(switched, state.cores, state.serving_cores)
    cap_t = replicas_t * tables.capacity_rps[variant, cores_t]
    mu_t = replicas_t * tables.service_rps[variant, cores_t]
    per_replica_t = np.maximum(replicas_t, 1)
    rate_t = np.ascontiguousarray(per_tick.T)  # (T, N)
    quotas_t = None if quotas is None else quotas.per_tick(state.loading_left_s, n_ticks)
    routed_t = _split(rate_t[:, :, None], cap_t, dispatcher, quotas_t)
    cv2_t = tables.service_cv[variant, cores_t] ** 2  # squared CV of the service time
    # Variance growth of one replica's queue per second: arrivals plus completions x cv^2 (added below).
    noise_t = mu_t * cv2_t
    half_bound_t = queue_factor * cap_t / per_replica_t / 2
    from infadapter_env.fast_sim_kernels import recurrence

    f64 = np.float64
    queue_t, variance_t, take_t, done_t, queue, variance, dropped, lost = recurrence(
        np.ascontiguousarray(state.backlog, dtype=f64),
        np.ascontiguousarray(state.backlog_var, dtype=f64),
        np.ascontiguousarray(rate_t, dtype=f64),
        np.ascontiguousarray(routed_t, dtype=f64),
        np.ascontiguousarray(cap_t, dtype=f64),
        np.ascontiguousarray(mu_t, dtype=f64),
        np.ascontiguousarray(noise_t, dtype=f64),
        np.ascontiguousarray(per_replica_t, dtype=f64),
        np.ascontiguousarray(half_bound_t, dtype=f64),
        float(queue_factor),
        dispatcher == "accuracy_first",
    )
    finished = ready_tick <= n_ticks
    new_state = ClusterState(
        state.replicas,
        state.cores,
        np.where(finished, state.replicas, state.serving_replicas),
        np.where(finished, state.cores, state.serving_cores),
        np.where(finished, 0.0, state.loading_left_s - n_ticks),
        queue,
        variance,
    )
    # Latencies of every tick at once, variant-major (N, V, T, wait point, spread point). A request
    # admitted a fraction x into the tick has the fluid queue ahead of it, spread by the queue's
    # wandering, by the replica's random share of the queue and by the randomness of its completions.
    safe_mu = np.maximum(mu_t, 1e-12)
    x = np.array(WAIT_POINTS)[None, :, None, None]  # (1, X, 1, 1) against (T, X, N, V)
    ahead = np.maximum(queue_t[:, None] + (take_t - mu_t)[:, None] * x, 0.0)
    mu_replica = np.maximum(mu_t / per_replica_t, 1e-12)[:, None]
    # Of n = ahead / R requests ahead per replica, a replica holds a random share (R replicas picked at
    # random: variance n (1 - 1 / R)) and completes them at random (variance n cv^2 in requests).
    scatter_t = ((1.0 - 1.0 / per_replica_t + cv2_t) / per_replica_t)[:, None]
    spread = np.sqrt(variance_t[:, None] + ahead * scatter_t) / mu_replica
    z = np.array([node for node, _ in QUEUE_SPREAD])[None, None, :, None, None]
    weight = np.array([w for _, w in QUEUE_SPREAD])[None, None, :, None, None] / len(WAIT_POINTS)
    longest_wait = (queue_factor * cap_t / safe_mu)[:, None, None]
    wait = np.clip((ahead / safe_mu[:, None])[:, :, None] + z * spread[:, :, None], 0.0, longest_wait)
    admitted = np.broadcast_to(take_t[:, None, None] * weight, wait.shape)
    slots = len(WAIT_POINTS) * len(QUEUE_SPREAD)

    def variant_major(a: np.ndarray) -> np.ndarray:  # (T, X, Z, N, V) -> (N, V, T x X x Z)
        return np.ascontiguousarray(np.moveaxis(a, (3, 4), (0, 1))).reshape(n_env, n_var, n_ticks * slots)

    load = _recent_mean(np.moveaxis(take_t, 0, -1))  # (N, V, T)
    capacity = _recent_mean(np.moveaxis(mu_t, 0, -1))
    share = load / np.maximum(_recent_mean(np.broadcast_to(per_tick[:, None, :], load.shape)), 1e-12)
    cv2 = np.moveaxis(cv2_t, 0, -1)
    replicas = np.moveaxis(per_replica_t, 0, -1)  # one replica's share and throughput
    recent = _effective_rho(load / np.maximum(capacity, 1e-12), share / replicas, cv2, capacity / replicas)
    wait_c = variant_major(wait)
    # Behind a queue the server is saturated and the fluid wait is the queueing: only the service
    # time is left (the table's lightest load).
    rho_c = np.where(wait_c > 0, 0.0, np.repeat(recent, slots, axis=-1))
    cores_c = np.repeat(np.moveaxis(cores_t, 0, -1), slots, axis=-1)
    served = take_t.sum(axis=0)
    busy = done_t.sum(axis=0) / np.maximum(mu_t.sum(axis=0), 1e-12)  # while serving, as mu changes
    result = _score(
        per_tick.sum(axis=1),
        per_tick.max(axis=1),
        variant_major(admitted),
        wait_c,
        rho_c,
        cores_c,
        tables,
        served,
        dropped,
        lost,
        busy,
        slots_per_tick=slots,
    )
    return new_state, result


def _score(
    arrivals, peak, admitted, wait, rho, cores, tables, served, dropped, lost, busy, slots_per_tick=1
) -> IntervalResult:
    """Violations and latency quantiles of admitted requests (N, V, K) with fluid ``wait`` (s, or
    None for none) ahead of them, at utilisation ``rho`` of servers with ``cores`` cores per replica
    (broadcast against (N, V, K)); ``slots_per_tick`` components per tick.

    Quantiles: from a histogram of the components' latency atoms (``_atom_quantiles``), so that a
    variant with a small share of the requests enters the interval's P99 with the body of its
    distribution, not with its tail extrapolated below its own P99."""
    n_var = admitted.shape[1]
    n_rho = tables.n_rho
    rho_index = np.minimum((np.minimum(rho, RHO_MAX) * (1.0 / RHO_STEP) + 0.5).astype(np.int64), n_rho - 1)
    variant = np.arange(n_var)[None, :, None]
    base = (variant * tables.capacity_rps.shape[1] + cores) * n_rho + rho_index  # (N, V, K)
    if wait is None:  # P(latency > SLO) at each utilisation: the table's last threshold
        over = tables.over.take(base * (THRESHOLD_STEPS + 1) + THRESHOLD_STEPS)
    else:  # given the wait: the over table at the remaining budget, linear in between
        budget = 1.0 - wait / tables.slo_s
        position = np.clip(budget, 0.0, 1.0) * THRESHOLD_STEPS
        low = np.minimum(position.astype(np.int64), THRESHOLD_STEPS - 1)
        frac = position - low
        row = base * (THRESHOLD_STEPS + 1) + low
        over = tables.over.take(row) * (1 - frac) + tables.over.take(row + 1) * frac
        over = np.where(budget <= 0, 1.0, over)
    over_slo = (admitted * over).sum(axis=-1)
    in_slo = served - over_slo
    base = np.broadcast_to(base, admitted.shape)
    (p50, p99), (p50_all, p99_all) = _atom_quantiles(*_grouped(admitted, wait, base, slots_per_tick), tables)
    return IntervalResult(
        arrivals,
        peak,
        np.maximum(in_slo, 0.0),
        served,
        row_sum(np.minimum(over_slo, served)),
        dropped,
        lost,
        busy,
        1000.0 * p50,
        1000.0 * p99,
        1000.0 * p50_all,
        1000.0 * p99_all,
    )


def _grouped(
    admitted: np.ndarray, wait: np.ndarray | None, base: np.ndarray, slots_per_tick: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Components (N, V, T x slots) merged over groups of ``QUANTILE_GROUP_S`` ticks: admitted
    summed, waits averaged by admitted (``wait`` None: none, zeros), the table row of the group's
    middle tick."""
    n_env, n_var, k = admitted.shape
    n_ticks = k // slots_per_tick
    group = QUANTILE_GROUP_S if n_ticks % QUANTILE_GROUP_S == 0 else 1
    if group == 1:
        return admitted, np.zeros(admitted.shape) if wait is None else wait, base
    shape = (n_env, n_var, n_ticks // group, group, slots_per_tick)
    mass = admitted.reshape(shape)
    total = mass.sum(axis=3)
    if wait is None:
        mean_wait = np.zeros(total.shape)
    else:
        mean_wait = (mass * wait.reshape(shape)).sum(axis=3) / np.maximum(total, 1e-300)
    rows = base.reshape(shape)[:, :, :, group // 2]
    k = n_ticks // group * slots_per_tick
    return total.reshape(n_env, n_var, k), mean_wait.reshape(n_env, n_var, k), rows.reshape(n_env, n_var, k)


def _atom_quantiles(admitted, wait, base, tables) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """P50 and P99 per variant (N, V) and overall (N,) of the mixture of components (N, V, K), each
    represented by its latency quantiles at ``ATOM_LEVELS`` shifted by its wait, read from a
    log-spaced histogram of the atoms (``fast_sim_kernels.mixture_quantiles``, compiled: a sort
    would cost ten times more at N = 1024, and numpy's calls more than the arithmetic at N = 1)."""
    from infadapter_env.fast_sim_kernels import mixture_quantiles

    p50, p99, p50_all, p99_all = mixture_quantiles(
        np.ascontiguousarray(admitted, dtype=np.float64),
        np.ascontiguousarray(wait, dtype=np.float64),
        np.ascontiguousarray(base, dtype=np.int64),
        tables.atoms_s,
        tables.atom_mass,
        BIN_LOW_S,
        N_BINS / np.log(BIN_HIGH_S / BIN_LOW_S),
        N_BINS,
    )
    return (p50, p99), (p50_all, p99_all)
