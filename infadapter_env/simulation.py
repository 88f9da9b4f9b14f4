"""The physics of one decision interval, as pure functions over small dataclasses.

Time runs in 1 s ticks. Per tick and per variant:

1. the variant serves up to its capacity, first its backlog (those requests are late), then the
   tick's new arrivals routed to it (those are in SLO);
2. the dispatcher routes the tick's arrivals: ``accuracy_first`` fills the most accurate variant up
   to its free capacity, then the next; ``proportional`` splits in proportion to capacity;
3. arrivals that find no free capacity wait in a queue (they will be late: an SLO violation),
   bounded by ``queue_factor * capacity``; beyond the bound they are dropped (also violations).

A deployment change starts a load of the variant's ``load_time_s``; the load finishes at the start
of tick ``ceil(load_time_s)`` after the decision. Until then the previous deployment of that variant
keeps serving (rolling update); a newly started variant serves nothing. A removed variant keeps
serving until every variant started or resized by the same decision is ready (make before break),
or stops at once if the decision starts nothing; when it stops, its queue is lost (those requests
were already counted as violated). Request counts are fluid (real numbers).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from infadapter_env.profiles import CapacityProfile

DISPATCHERS = ("accuracy_first", "proportional")


@dataclass(frozen=True, slots=True)
class ClusterState:
    """What the cluster runs: per variant, the target and the currently serving deployment."""

    replicas: np.ndarray  # target replicas (int, V)
    cores: np.ndarray  # target cores per replica (int, V)
    target_capacity_rps: np.ndarray  # capacity once every load has finished (V)
    serving_capacity_rps: np.ndarray  # capacity serving right now (V)
    loading_left_s: np.ndarray  # seconds until the target of each variant is ready (V)
    backlog: np.ndarray  # requests waiting in each variant's queue (V)

    @property
    def total_cores(self) -> int:
        return int(self.replicas @ self.cores)


@dataclass(frozen=True, slots=True)
class IntervalResult:
    """What happened in one interval (counts are requests)."""

    arrivals: float
    peak_rate_rps: float
    in_slo: np.ndarray  # served within the SLO, per variant
    served: np.ndarray  # served at all (in SLO or late), per variant
    late: float  # queued, served (or lost) after their tick
    dropped: float  # turned away at a full queue
    lost: float  # queued requests discarded when their variant stopped (already counted as late)
    capacity_seconds: np.ndarray  # sum over ticks of each variant's serving capacity

    @property
    def violated(self) -> float:
        return self.late + self.dropped

    @property
    def utilisation(self) -> np.ndarray:
        """Served over serving capacity, per variant (0 where nothing served)."""
        return self.served / np.maximum(self.capacity_seconds, 1e-12)


def empty_state(n_variants: int) -> ClusterState:
    zeros = np.zeros(n_variants)
    return ClusterState(
        np.zeros(n_variants, dtype=np.int64), np.zeros(n_variants, dtype=np.int64), zeros, zeros, zeros, zeros
    )


def deploy(state: ClusterState, replicas: np.ndarray, cores: np.ndarray, profile: CapacityProfile) -> ClusterState:
    """Apply a new target deployment.

    Unchanged variants keep their state. Started or resized variants load for their load time while
    the previous deployment serves. Removed variants serve until every variant started or resized
    by the same decision is ready (make before break), or stop at once if there is none.
    """
    active = (replicas > 0) & (cores > 0)
    replicas = np.where(active, replicas, 0)
    cores = np.where(active, cores, 0)
    changed = (replicas != state.replicas) | (cores != state.cores)
    if not changed.any():
        return state
    target_capacity = profile.capacity_rps(replicas, cores)
    starting = changed & active
    handover_s = float(profile.load_time_s[starting].max()) if starting.any() else 0.0
    loading = np.where(starting, profile.load_time_s, np.where(changed, handover_s, state.loading_left_s))
    return ClusterState(replicas, cores, target_capacity, state.serving_capacity_rps, loading, state.backlog)


@dataclass(frozen=True, slots=True)
class IntervalArrivals:
    """The per-tick arrivals of one interval, with the sorted form the fast path needs.

    ``ascending`` and ``tail_sums`` are Python lists: the fast path bisects them a few times per
    step, which is cheaper than a numpy call on arrays this small.
    """

    per_tick: np.ndarray
    ascending: list[float]
    tail_sums: list[float]  # tail_sums[k] = sum(ascending[k:]); length n + 1
    total: float
    peak: float

    @classmethod
    def batch(cls, per_tick: np.ndarray) -> list[IntervalArrivals]:
        """One object per row of ``per_tick`` (intervals x ticks), sorted in one pass."""
        ascending = np.sort(per_tick, axis=1)
        tails = np.zeros((per_tick.shape[0], per_tick.shape[1] + 1))
        tails[:, :-1] = np.cumsum(ascending[:, ::-1], axis=1)[:, ::-1]
        rows = zip(per_tick, ascending.tolist(), tails.tolist(), strict=True)
        return [cls(ticks, asc, tail, tail[0], asc[-1]) for ticks, asc, tail in rows]

    def excess(self, threshold: float) -> float:
        """``sum over ticks of max(arrivals - threshold, 0)``."""
        above = bisect_right(self.ascending, threshold)
        return self.tail_sums[above] - threshold * (len(self.ascending) - above)


def _route_fast(arrivals: np.ndarray, capacity: np.ndarray, dispatcher: str) -> np.ndarray:
    """In-SLO requests per variant when no queue forms (every tick's arrivals fit the capacity)."""
    total = capacity.sum()
    if dispatcher == "accuracy_first":
        more_accurate = total - np.cumsum(capacity)
        return np.clip(arrivals[:, None] - more_accurate, 0.0, capacity).sum(axis=0)
    if total <= 0:
        return np.zeros_like(capacity)
    return arrivals.sum() * capacity / total


def _route_ticks(
    arrivals: np.ndarray,
    capacity: np.ndarray,
    backlog: np.ndarray,
    dispatcher: str,
    queue_factor: float,
) -> tuple[list[float], list[float], list[float], float, float]:
    """Tick-by-tick routing with queues. Returns in_slo, served, backlog (per variant), late, dropped."""
    n = capacity.size
    cap = capacity.tolist()
    queue = backlog.tolist()
    bound = [queue_factor * c for c in cap]
    total_cap = sum(cap)
    in_slo = [0.0] * n
    served = [0.0] * n
    late = dropped = 0.0
    # Most accurate first; variants with neither capacity nor queue take no part.
    order = [v for v in range(n - 1, -1, -1) if cap[v] > 0 or queue[v] > 0]
    for rate in arrivals.tolist():
        room = [0.0] * n
        for v in order:
            from_queue = min(queue[v], cap[v])
            queue[v] -= from_queue
            served[v] += from_queue
            room[v] = cap[v] - from_queue
        if dispatcher == "accuracy_first":
            remaining = rate
            for v in order:
                take = min(remaining, room[v])
                in_slo[v] += take
                served[v] += take
                remaining -= take
            for v in order:
                if remaining <= 0:
                    break
                put = min(remaining, max(bound[v] - queue[v], 0.0))
                queue[v] += put
                late += put
                remaining -= put
            dropped += max(remaining, 0.0)
        elif total_cap <= 0:
            dropped += rate
        else:
            for v in order:
                share = rate * cap[v] / total_cap
                take = min(share, room[v])
                in_slo[v] += take
                served[v] += take
                put = min(share - take, max(bound[v] - queue[v], 0.0))
                queue[v] += put
                late += put
                dropped += share - take - put
    return in_slo, served, queue, late, dropped


def simulate_interval(
    state: ClusterState,
    arrivals: IntervalArrivals,
    profile: CapacityProfile,
    dispatcher: str = "accuracy_first",
    queue_factor: float = 1.25,
) -> tuple[ClusterState, IntervalResult]:
    """Run one interval of one-second ticks from ``state``; a pure function."""
    per_tick = arrivals.per_tick
    n_ticks = per_tick.size
    loading = state.loading_left_s
    capacity = state.target_capacity_rps
    if not loading.any() and not state.backlog.any():
        cap = capacity.tolist()
        total_capacity = sum(cap)
        if arrivals.peak <= total_capacity:
            # Steady deployment and no queue can form: closed form over the sorted arrivals.
            if dispatcher == "accuracy_first":
                closed_form = []
                more_accurate = total_capacity
                for c in cap:
                    more_accurate -= c
                    closed_form.append(arrivals.excess(more_accurate) - arrivals.excess(more_accurate + c))
                in_slo = np.array(closed_form)
            else:
                in_slo = _route_fast(per_tick, capacity, dispatcher)
            result = IntervalResult(arrivals.total, arrivals.peak, in_slo, in_slo, 0.0, 0.0, 0.0, capacity * n_ticks)
            return state, result
    ready_tick = np.ceil(loading).astype(np.int64)
    # Segments of constant serving capacity, split where a load finishes inside the interval.
    cuts = sorted({int(t) for t in ready_tick[(ready_tick > 0) & (ready_tick < n_ticks)].tolist()})
    bounds = [0, *cuts, n_ticks]
    backlog = state.backlog
    in_slo = np.zeros(backlog.size)
    served = np.zeros(backlog.size)
    capacity_seconds = np.zeros(backlog.size)
    late = dropped = lost = 0.0
    for begin, end in pairwise(bounds):
        capacity = np.where(ready_tick <= begin, state.target_capacity_rps, state.serving_capacity_rps)
        stopped = (capacity == 0) & (backlog > 0)
        if stopped.any():
            lost += float(backlog[stopped].sum())
            backlog = np.where(stopped, 0.0, backlog)
        segment = per_tick[begin:end]
        capacity_seconds += capacity * (end - begin)
        if not backlog.any() and segment.max(initial=0.0) <= capacity.sum():
            routed = _route_fast(segment, capacity, dispatcher)
            in_slo += routed
            served += routed
        else:
            seg_in_slo, seg_served, queue, seg_late, seg_dropped = _route_ticks(
                segment, capacity, backlog, dispatcher, queue_factor
            )
            in_slo += seg_in_slo
            served += seg_served
            backlog = np.array(queue)
            late += seg_late
            dropped += seg_dropped
    done = ready_tick <= n_ticks
    new_state = replace(
        state,
        serving_capacity_rps=np.where(done, state.target_capacity_rps, state.serving_capacity_rps),
        loading_left_s=np.where(done, 0.0, loading - n_ticks),
        backlog=backlog,
    )
    result = IntervalResult(arrivals.total, arrivals.peak, in_slo, served, late, dropped, lost, capacity_seconds)
    return new_state, result
