"""The tick physics of ``infadapter_env.simulation`` for N environments at once, in array operations.

Every function here mirrors one of the scalar module (same rules, same order of operations per
tick) on arrays with a leading environment axis; ``tests/test_vector.py`` checks that both give the
same trajectories. Variants are ordered from least to most accurate along the last axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infadapter_env.profiles import CapacityProfile
from infadapter_env.rows import row_any, row_max, row_sum, sum_after


@dataclass(frozen=True, slots=True)
class BatchState:
    """``ClusterState`` of N environments: every field gains a leading axis of size N."""

    replicas: np.ndarray  # (N, V) int
    cores: np.ndarray  # (N, V) int
    target_capacity_rps: np.ndarray  # (N, V)
    serving_capacity_rps: np.ndarray  # (N, V)
    loading_left_s: np.ndarray  # (N, V)
    backlog: np.ndarray  # (N, V)

    def select(self, rows: np.ndarray) -> BatchState:
        return BatchState(*(getattr(self, f)[rows] for f in self.__slots__))  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """``IntervalResult`` of N environments."""

    arrivals: np.ndarray  # (N,)
    peak_rate_rps: np.ndarray  # (N,)
    in_slo: np.ndarray  # (N, V)
    served: np.ndarray  # (N, V)
    late: np.ndarray  # (N,)
    dropped: np.ndarray  # (N,)
    lost: np.ndarray  # (N,)
    capacity_seconds: np.ndarray  # (N, V)

    @property
    def utilisation(self) -> np.ndarray:
        return self.served / np.maximum(self.capacity_seconds, 1e-12)


@dataclass(frozen=True, slots=True)
class ArrivalsBatch:
    """``simulation.IntervalArrivals`` of N environments: per-tick arrivals and their sorted form.

    One interval per environment has arrays (N, ...); the vector env keeps every interval of an
    episode step-major, (steps, N, ...), so that one step of all environments is a contiguous view.
    ``keys`` (optional) holds the sorted arrivals shifted by ``row x spread`` for ``excess``.
    """

    per_tick: np.ndarray  # (N, ticks)
    ascending: np.ndarray  # (N, ticks)
    tail_sums: np.ndarray  # (N, ticks + 1): tail_sums[:, k] = ascending[:, k:].sum(axis=1)
    total: np.ndarray  # (N,)
    peak: np.ndarray  # (N,)
    keys: np.ndarray | None = None  # (N, ticks): ascending + row index x spread
    spread: float = 0.0

    @classmethod
    def of(cls, per_tick: np.ndarray, spread: float = 0.0) -> ArrivalsBatch:
        """From (..., N, ticks) arrivals; with ``spread`` > every arrival and threshold, keys are kept."""
        ascending = np.sort(per_tick, axis=-1)
        tails = np.zeros((*per_tick.shape[:-1], per_tick.shape[-1] + 1))
        tails[..., :-1] = np.cumsum(ascending[..., ::-1], axis=-1)[..., ::-1]
        keys = ascending + np.arange(per_tick.shape[-2])[:, None] * spread if spread else None
        return cls(per_tick, ascending, tails, tails[..., 0].copy(), ascending[..., -1].copy(), keys, spread)

    def take(self, rows: np.ndarray, steps: np.ndarray) -> ArrivalsBatch:
        """Interval ``steps[i]`` of environment ``rows[i]``, from a step-major (steps, N, ...) batch."""
        if rows.size and rows.size == self.total.shape[-1] and steps.min() == steps.max():
            step = int(steps[0])  # every environment at the same step: contiguous views
            keys = self.keys[step] if self.keys is not None else None
            per_tick, ascending, tails, total, peak = (getattr(self, f)[step] for f in _ARRAYS)
            return ArrivalsBatch(per_tick, ascending, tails, total, peak, keys, self.spread)
        per_tick, ascending, tails, total, peak = (getattr(self, f)[steps, rows] for f in _ARRAYS)
        return ArrivalsBatch(per_tick, ascending, tails, total, peak)

    def select(self, rows: np.ndarray) -> ArrivalsBatch:
        per_tick, ascending, tails, total, peak = (getattr(self, f)[rows] for f in _ARRAYS)
        return ArrivalsBatch(per_tick, ascending, tails, total, peak)

    def excess(self, thresholds: np.ndarray) -> np.ndarray:
        """``sum over ticks of max(arrivals - x, 0)`` for thresholds (N, K), by one search over all rows:
        each row's sorted arrivals are shifted into a range of their own."""
        n, ticks = self.ascending.shape
        spread, keys = self.spread, self.keys
        if keys is None or thresholds.max(initial=0.0) >= spread / 2:
            spread = 2.0 * (max(float(self.peak.max(initial=0.0)), float(thresholds.max(initial=0.0))) + 1.0)
            keys = self.ascending + np.arange(n)[:, None] * spread
        offsets = np.arange(n)[:, None] * spread
        above = np.searchsorted(keys.ravel(), (thresholds + offsets).ravel(), side="right")
        above = above.reshape(thresholds.shape) - np.arange(n)[:, None] * ticks
        return np.take_along_axis(self.tail_sums, above, axis=1) - thresholds * (ticks - above)


_ARRAYS = ("per_tick", "ascending", "tail_sums", "total", "peak")


def capacity_batch(profile: CapacityProfile, replicas: np.ndarray, cores: np.ndarray) -> np.ndarray:
    return replicas * profile.per_replica_rps[np.arange(replicas.shape[1]), cores]


def deploy_batch(state: BatchState, replicas: np.ndarray, cores: np.ndarray, profile: CapacityProfile) -> BatchState:
    """``simulation.deploy`` for every environment (unchanged environments keep their state)."""
    active = (replicas > 0) & (cores > 0)
    replicas = np.where(active, replicas, 0)
    cores = np.where(active, cores, 0)
    changed = (replicas != state.replicas) | (cores != state.cores)
    if not changed.any():
        return state
    target = capacity_batch(profile, replicas, cores)
    starting = changed & active
    handover_s = row_max(np.where(starting, profile.load_time_s, 0.0))[:, None]
    loading = np.where(starting, profile.load_time_s, np.where(changed, handover_s, state.loading_left_s))
    return BatchState(replicas, cores, target, state.serving_capacity_rps, loading, state.backlog)


def _steady(arrivals: ArrivalsBatch, capacity: np.ndarray, dispatcher: str) -> np.ndarray:
    """In-SLO requests when no queue can form: the closed form of ``simulation``'s fast path."""
    if dispatcher == "accuracy_first":
        # Variant v answers E(more_v) - E(more_v + cap_v), E(x) = sum of max(arrivals - x, 0), and
        # more_v + cap_v = more_(v-1). With E(total capacity) = 0 (steady: no tick exceeds it) and
        # E(0) = all arrivals, only the V - 1 inner thresholds need a search.
        more = sum_after(capacity)
        inner = arrivals.excess(np.ascontiguousarray(more[:, :-1]))
        levels = np.concatenate([np.zeros((len(more), 1)), inner, arrivals.total[:, None]], axis=1)
        return levels[:, 1:] - levels[:, :-1]
    total = row_sum(capacity)[:, None]
    return arrivals.total[:, None] * capacity / np.maximum(total, 1e-300)


def _ticks(
    state: BatchState, arrivals: np.ndarray, dispatcher: str, queue_factor: float
) -> tuple[BatchState, BatchResult]:
    """Tick-by-tick routing with queues and loads (``simulation._route_ticks`` per tick)."""
    n_env, n_var = state.backlog.shape
    ready_tick = np.ceil(state.loading_left_s)
    queue = state.backlog.copy()
    in_slo = np.zeros((n_env, n_var))
    served = np.zeros((n_env, n_var))
    capacity_seconds = np.zeros((n_env, n_var))
    late = np.zeros(n_env)
    dropped = np.zeros(n_env)
    lost = np.zeros(n_env)
    for tick in range(arrivals.shape[1]):
        rate = arrivals[:, tick]
        capacity = np.where(ready_tick <= tick, state.target_capacity_rps, state.serving_capacity_rps)
        stopped = (capacity == 0) & (queue > 0)
        lost += row_sum(np.where(stopped, queue, 0.0))
        queue[stopped] = 0.0
        capacity_seconds += capacity
        from_queue = np.minimum(queue, capacity)
        queue -= from_queue
        served += from_queue
        room = capacity - from_queue
        space = np.maximum(queue_factor * capacity - queue, 0.0)
        if dispatcher == "accuracy_first":
            take = np.clip(rate[:, None] - sum_after(room), 0.0, room)
            remaining = np.maximum(rate - row_sum(take), 0.0)
            put = np.clip(remaining[:, None] - sum_after(space), 0.0, space)
            turned_away = remaining - row_sum(put)
        else:
            total = row_sum(capacity)[:, None]
            share = rate[:, None] * capacity / np.maximum(total, 1e-300)
            take = np.minimum(share, room)
            put = np.minimum(share - take, space)
            turned_away = row_sum(share - take - put) + np.where(total[:, 0] <= 0, rate, 0.0)
        in_slo += take
        served += take
        queue += put
        late += row_sum(put)
        dropped += turned_away
    n_ticks = arrivals.shape[1]
    done = ready_tick <= n_ticks
    new_state = BatchState(
        state.replicas,
        state.cores,
        state.target_capacity_rps,
        np.where(done, state.target_capacity_rps, state.serving_capacity_rps),
        np.where(done, 0.0, state.loading_left_s - n_ticks),
        queue,
    )
    result = BatchResult(
        arrivals.sum(axis=1), arrivals.max(axis=1), in_slo, served, late, dropped, lost, capacity_seconds
    )
    return new_state, result


def simulate_interval_batch(
    state: BatchState,
    arrivals: ArrivalsBatch,
    dispatcher: str = "accuracy_first",
    queue_factor: float = 1.25,
) -> tuple[BatchState, BatchResult]:
    """``simulation.simulate_interval`` for N environments.

    Environments that are steady (nothing loading, no queue, every tick within capacity) take the
    closed form; the others run tick by tick."""
    n_env, n_var = state.backlog.shape
    n_ticks = arrivals.per_tick.shape[1]
    capacity = state.target_capacity_rps
    steady = ~row_any(state.loading_left_s) & ~row_any(state.backlog) & (arrivals.peak <= row_sum(capacity))
    if steady.all():
        in_slo = _steady(arrivals, capacity, dispatcher)
        zeros = np.zeros(n_env)
        result = BatchResult(arrivals.total, arrivals.peak, in_slo, in_slo, zeros, zeros, zeros, capacity * n_ticks)
        return state, result
    rest = np.flatnonzero(~steady)
    sub_state, sub_result = _ticks(state.select(rest), arrivals.per_tick[rest], dispatcher, queue_factor)
    in_slo = np.empty((n_env, n_var))
    served = np.empty((n_env, n_var))
    capacity_seconds = capacity * n_ticks
    late, dropped, lost = np.zeros(n_env), np.zeros(n_env), np.zeros(n_env)
    if steady.any():
        calm = np.flatnonzero(steady)
        in_slo[calm] = served[calm] = _steady(arrivals.select(calm), capacity[calm], dispatcher)
    in_slo[rest], served[rest], capacity_seconds[rest] = (
        sub_result.in_slo,
        sub_result.served,
        sub_result.capacity_seconds,
    )
    late[rest], dropped[rest], lost[rest] = sub_result.late, sub_result.dropped, sub_result.lost
    serving = state.serving_capacity_rps.copy()
    loading = state.loading_left_s.copy()
    backlog = state.backlog.copy()
    serving[rest], loading[rest], backlog[rest] = (
        sub_state.serving_capacity_rps,
        sub_state.loading_left_s,
        sub_state.backlog,
    )
    new_state = BatchState(state.replicas, state.cores, state.target_capacity_rps, serving, loading, backlog)
    result = BatchResult(arrivals.total, arrivals.peak, in_slo, served, late, dropped, lost, capacity_seconds)
    return new_state, result
