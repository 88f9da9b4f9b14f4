"""The request-level simulator in plain Python, one request at a time: the test oracle of the
compiled ``infadapter_env.sim.request`` (whose docstring gives the rules).

The same classes, functions and draws from the generator in the same order as the compiled
simulator, so that on one seed both give equal per-request outcomes, interval results and cluster
states (``tests/sim/test_request_kernels.py``); ``tests/benchmarks/test_request_speed.py`` times it
as the reference. A change of the rules goes into both.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from infadapter_env.sim.cluster import ClusterState, IntervalResult, QuotaPlan, served_shares
from infadapter_env.sim.fast import ServerTables
from infadapter_env.sim.latency_histogram import EXPERIMENT_WINDOW_S, window_quantiles_ms
from infadapter_env.world.arrivals import request_times, whole_counts
from infadapter_env.world.profiles import CapacityProfile
from infadapter_env.world.service_model import ServiceModel

_NO_DRAWS: tuple[list[float], int] = ([], 0)
SERVICE_CHUNK = 2048
MAX_EPISODE_REQUESTS = 50_000_000  # about 2 GB of request times and 4 min of simulation


@dataclass
class Replica:
    """One model server: ``workers`` FIFO workers, a bounded waiting queue."""

    variant: int
    cores: int
    bound: float
    free_at: list[float]
    # (start time, request index, arrival time) of admitted requests, in start order; entries
    # whose start has passed are dropped lazily, so the rest are the waiting requests.
    pending: deque = field(default_factory=deque)


@dataclass
class RequestRecords:
    """The requests of one interval: arrival (s), variant (-1: dropped), latency (s, NaN: dropped)."""

    arrival_s: np.ndarray
    variant: np.ndarray
    latency_s: np.ndarray


class RequestSimulator:
    """Exact request-level simulation of one environment, interval by interval."""

    def __init__(
        self,
        profile: CapacityProfile,
        service: ServiceModel,
        dispatcher: str,
        queue_factor: float,
        arrivals: str,
        rng: np.random.Generator,
        replica_routing: str = "random",
    ) -> None:
        self.profile = profile
        self.replica_routing = replica_routing
        self._turns = [0] * len(profile.variants)  # round robin: each variant's next replica
        self.service = service
        self.dispatcher = dispatcher
        self.queue_factor = queue_factor
        self.arrival_process = arrivals
        self.rng = rng
        n_var = len(profile.variants)
        self.n_variants = n_var
        self.serving: list[tuple[int, int]] = [(0, 0)] * n_var
        self.replicas: list[list[Replica]] = [[] for _ in range(n_var)]
        self._service_buffers: dict[tuple[int, int], tuple[list[float], int]] = {}
        self._times = np.zeros(0)
        self._wrr = (0, 1)  # the round-robin's (index, round)
        self._quotas: list[int] = []
        self.quotas: list[float] | None = None  # the controller's quotas routing now (quota dispatcher)
        self.rescheduled_late = 0
        self._lost = 0
        self.service_seconds = np.zeros(self.n_variants)
        self.window_p99_ms = np.zeros(0)  # last interval's 5 s window P99s (0: nothing completed)

    # ------------------------------------------------------------------ episode set-up
    def start_episode(self, per_second: np.ndarray, serving: list[tuple[int, int]]) -> None:
        """Draw every request time of the episode; start serving ``serving`` (replicas, cores) at t = 0."""
        counts = whole_counts(per_second)
        if counts.sum() > MAX_EPISODE_REQUESTS:
            raise ValueError(
                f"the request-level simulator would simulate {counts.sum():,} requests in this episode (at most "
                f"{MAX_EPISODE_REQUESTS:,}); lower rate_multiplier or episode_length_s, or use simulator='fast'"
            )
        self._times = request_times(counts, self.arrival_process, self.rng)
        self._bounds = np.searchsorted(self._times, np.arange(per_second.size + 1, dtype=np.float64))
        self.serving = [(0, 0)] * self.n_variants
        self.replicas = [[] for _ in range(self.n_variants)]
        self._service_buffers = {}
        self._wrr, self._quotas = (0, 1), []
        self.quotas = None
        self.rescheduled_late = 0
        for v, (r, c) in enumerate(serving):
            self._switch(v, r, c, 0.0, None)

    # ------------------------------------------------------------------ one interval
    def run_interval(
        self,
        start_s: int,
        n_ticks: int,
        target: list[tuple[int, int]],
        ready_tick: list[int],
        planned_quotas: tuple[int, list[float]] | None = None,
    ) -> RequestRecords:
        """Simulate seconds ``start_s .. start_s + n_ticks``. ``target[v]`` becomes what variant ``v``
        serves at second ``start_s + ready_tick[v]`` (no change if ``ready_tick[v]`` > ``n_ticks``);
        ``planned_quotas`` = (second, quotas): the quotas routing from that second on."""
        first, last = int(self._bounds[start_s]), int(self._bounds[start_s + n_ticks])
        times = self._times[first:last]
        n = times.size
        variant_of = np.full(n, -1, dtype=np.int64)
        finish = np.full(n, np.nan)
        records = (times, variant_of, finish)
        draws = self.rng.random((2, n))  # the variant (and the replica in it); a replica elsewhere
        per_tick_bounds = self._bounds[start_s : start_s + n_ticks + 1] - first
        self.service_seconds = np.zeros(self.n_variants)  # what the servers could complete, per variant
        for tick in range(n_ticks + 1):
            for v in range(self.n_variants):
                if ready_tick[v] == tick and self.serving[v] != target[v]:
                    self._switch(v, *target[v], float(start_s + tick), records)
            if planned_quotas is not None and planned_quotas[0] == tick:
                self.quotas = planned_quotas[1]
            if tick == n_ticks:  # a load finishing with the interval serves from the next one on
                break
            for v, (r, c) in enumerate(self.serving):
                self.service_seconds[v] += r * float(self.service.service_rps[v, c]) if r and c else 0.0
            begin, end = int(per_tick_bounds[tick]), int(per_tick_bounds[tick + 1])
            shares = self._shares(end - begin)
            total = sum(weight for _, weight in shares)
            tick_times = times[begin:end].tolist()
            first_draws, other_draws = draws[0, begin:end].tolist(), draws[1, begin:end].tolist()
            for k, i in enumerate(range(begin, end)):
                self._admit(i, tick_times[k], first_draws[k], other_draws[k], shares, total, records)
        latency = finish - times
        return RequestRecords(times, variant_of, latency)

    def waiting(self, v: int, now: float) -> int:
        """Requests waiting (not yet started) in variant ``v``'s queues at time ``now``."""
        total = 0
        for replica in self.replicas[v]:
            self._prune(replica, now)
            total += len(replica.pending)
        return total

    def take_lost(self) -> int:
        """Waiting requests lost when their variant stopped, since the last call."""
        lost, self._lost = self._lost, 0
        return lost

    # ------------------------------------------------------------------ internals
    def _capacity(self, v: int) -> float:
        r, c = self.serving[v]
        return r * float(self.profile.per_replica_rps[v, c]) if r and c else 0.0

    def _service_s(self, v: int, cores: int) -> float:
        key = (v, cores)
        buffer, used = self._service_buffers.get(key, _NO_DRAWS)
        if used >= len(buffer):  # drawn in chunks (as Python floats: indexed once per request)
            buffer, used = self.service.draw_service_s(v, cores, self.rng, SERVICE_CHUNK).tolist(), 0
        self._service_buffers[key] = (buffer, used + 1)
        return buffer[used]

    def _order(self) -> list[int]:
        return [v for v in range(self.n_variants - 1, -1, -1) if self.replicas[v]]

    @staticmethod
    def _prune(replica: Replica, now: float) -> None:
        pending = replica.pending
        while pending and pending[0][0] <= now:
            pending.popleft()

    def _has_room(self, replica: Replica, now: float) -> bool:
        """A free worker takes the request at once; otherwise it waits if the queue has room."""
        if replica.free_at[0] <= now:
            return True
        self._prune(replica, now)
        return len(replica.pending) < replica.bound

    def _pick_replica(self, v: int, draw: float) -> Replica:
        group = self.replicas[v]
        if self.replica_routing == "round_robin":
            turn = self._turns[v]
            self._turns[v] = (turn + 1) % len(group)
            return group[turn]
        return group[min(int(draw * len(group)), len(group) - 1)]

    def _shares(self, count: int) -> list[tuple[int, float]]:
        """(variant, weight) of the random split of a second's ``count`` requests, most accurate first."""
        order = self._order()
        if self.dispatcher == "proportional":
            return [(v, self._capacity(v)) for v in order]
        # accuracy_first: the fluid split (most accurate first, up to capacity); the excess goes to
        # the most accurate variant (and on from a full queue).
        split = served_shares([self._capacity(v) for v in range(self.n_variants)], float(count))
        shares = [(v, split[v]) for v in order]
        left = count - sum(split)
        if order and left > 0:
            shares[0] = (order[0], shares[0][1] + left)
        return shares

    def _admit(
        self,
        i: int,
        now: float,
        draw: float,
        other_draw: float,
        shares: list[tuple[int, float]],
        total: float,
        records,
    ) -> None:
        if not shares:
            return
        if self.dispatcher == "quota":
            v = self._next_quota()
            if v is not None:
                replica = self._pick_replica(v, draw)
                if self._has_room(replica, now):
                    self._serve(replica, i, now, now, records)
            return
        if total <= 0:
            return
        point, v, share = draw * total, shares[-1][0], shares[-1][1]
        for candidate, weight in shares:
            if point < weight:
                v, share = candidate, weight
                break
            point -= weight
        # The replica draw reuses the fraction left inside the chosen variant's share.
        replica = self._pick_replica(v, min(point / max(share, 1e-12), 0.999999))
        if self._has_room(replica, now):
            self._serve(replica, i, now, now, records)
            return
        if self.dispatcher == "accuracy_first":  # a full queue passes the request on
            for other, _ in shares:
                if other != v:
                    replica = self._pick_replica(other, other_draw)
                    if self._has_room(replica, now):
                        self._serve(replica, i, now, now, records)
                        return

    def _next_quota(self) -> int | None:
        quotas = [0] * self.n_variants
        if self.quotas is not None:
            quotas = [round(q) if self.replicas[v] else 0 for v, q in enumerate(self.quotas)]
        if max(quotas) <= 0:
            quotas = [round(self._capacity(v)) if self.replicas[v] else 0 for v in range(self.n_variants)]
        if quotas != self._quotas:  # new quotas restart the round robin (the original's /reset)
            self._quotas, self._wrr = quotas, (0, 1)
        top = max(quotas)
        if top <= 0:
            return None
        index, rnd = self._wrr
        while True:
            v, eligible = index, quotas[index] >= rnd
            index += 1
            if index == self.n_variants:
                index, rnd = 0, rnd + 1
                if rnd > top:
                    rnd = 1
            if eligible:
                self._wrr = (index, rnd)
                return v

    def _serve(self, replica: Replica, i: int, arrival: float, now: float, records) -> None:
        service = self._service_s(replica.variant, replica.cores)
        earliest = replica.free_at[0]
        start = now if now > earliest else earliest
        heapq.heapreplace(replica.free_at, start + service)
        replica.pending.append((start, i, arrival))
        _, variant_of, finish = records
        if i >= 0:
            variant_of[i] = replica.variant
            finish[i] = start + service

    def _switch(self, v: int, replicas: int, cores: int, now: float, records) -> None:
        """Variant ``v`` now serves ``replicas`` x ``cores``; waiting requests move to the new replicas."""
        waiting: list[tuple[float, int, float]] = []
        for old in self.replicas[v]:
            waiting.extend(entry for entry in old.pending if entry[0] > now)
        waiting.sort()
        self.serving[v] = (replicas, cores) if replicas and cores else (0, 0)
        if not (replicas and cores):
            self.replicas[v] = []
        else:
            workers = int(self.service.workers[v, cores])
            bound = self.queue_factor * float(self.profile.per_replica_rps[v, cores])
            self.replicas[v] = [Replica(v, cores, bound, [now] * workers) for _ in range(replicas)]
        self._turns[v] = 0
        for _, i, arrival in waiting:
            index = i if records is not None and 0 <= i < records[0].size and records[0][i] == arrival else -1
            if index < 0:
                self.rescheduled_late += 1
            if not self.replicas[v]:
                self._lost += 1
                if index >= 0:
                    records[1][index] = -1
                    records[2][index] = np.nan
                continue
            replica = self._pick_replica(v, float(self.rng.random()))
            if not self._has_room(replica, now):  # the new replicas' queues are full: lost
                self._lost += 1
                if index >= 0:
                    records[1][index] = -1
                    records[2][index] = np.nan
                continue
            self._serve(replica, index, arrival, now, records or (np.zeros(0), np.zeros(0), np.zeros(0)))


def window_p99_ms(records: RequestRecords, served: np.ndarray, start_s: int, n_ticks: int) -> np.ndarray:
    """P99 (ms) of each 5 s window of an interval's completions, as TF-Serving's histogram reports it
    (0 where nothing completed; completions after the interval's end count in its last window)."""
    n_windows = math.ceil(n_ticks / EXPERIMENT_WINDOW_S)
    done_s = records.arrival_s[served] + records.latency_s[served] - start_s
    window = np.clip(np.floor(done_s / EXPERIMENT_WINDOW_S), 0, n_windows - 1).astype(np.int64)
    latency_ms = records.latency_s[served] * 1000.0
    return np.nan_to_num(window_quantiles_ms(window, latency_ms, n_windows)[0], nan=0.0)


def simulate_requests(
    engine: RequestSimulator,
    state: ClusterState,
    start_s: int,
    n_ticks: int,
    tables: ServerTables,
    quotas: QuotaPlan | None = None,
) -> tuple[ClusterState, IntervalResult]:
    """One interval of one environment (arrays with N = 1) on the request-level simulator, with the
    fast model's bookkeeping of loads (a target serves from second ``ceil(loading_left_s)``)."""
    n_var = engine.n_variants
    target = list(zip(state.replicas[0].tolist(), state.cores[0].tolist(), strict=True))
    loading = state.loading_left_s[0]
    ready = [math.ceil(x) if x > 0 else 0 for x in loading.tolist()]
    switch_tick = [
        ready[v] if engine.serving[v] != target[v] and ready[v] <= n_ticks else n_ticks + 1 for v in range(n_var)
    ]
    planned = None
    if quotas is not None:
        engine.quotas = None if np.isnan(quotas.current[0]).all() else quotas.current[0].tolist()
        if not np.isnan(quotas.planned[0]).all():
            planned = (int(QuotaPlan.switch_tick(state.loading_left_s)[0]), quotas.planned[0].tolist())
    records = engine.run_interval(start_s, n_ticks, target, switch_tick, planned)
    end_s = float(start_s + n_ticks)
    served = records.variant >= 0
    latency_ms = records.latency_s * 1000.0
    in_slo = np.zeros(n_var)
    served_by = np.zeros(n_var)
    p50 = np.zeros(n_var)
    p99 = np.zeros(n_var)
    for v in range(n_var):
        mine = latency_ms[records.variant == v]
        served_by[v] = mine.size
        if mine.size:
            in_slo[v] = float((mine <= tables.slo_s * 1000.0).sum())
            p50[v], p99[v] = np.percentile(mine, [50, 99])
    all_served = latency_ms[served]
    engine.window_p99_ms = window_p99_ms(records, served, start_s, n_ticks)
    p50_all, p99_all = np.percentile(all_served, [50, 99]) if all_served.size else (0.0, 0.0)
    finished = np.array([r <= n_ticks for r in ready])
    new_replicas = np.where(finished, state.replicas[0], state.serving_replicas[0])
    new_cores = np.where(finished, state.cores[0], state.serving_cores[0])
    busy = np.minimum(served_by / np.maximum(engine.service_seconds, 1e-12), 1.0)
    new_state = ClusterState(
        state.replicas,
        state.cores,
        new_replicas[None],
        new_cores[None],
        np.where(finished, 0.0, loading - n_ticks)[None],
        np.array([[engine.waiting(v, end_s) for v in range(n_var)]], dtype=float),
        np.zeros((1, n_var)),  # the request-level queue is exact: no spread to track
    )
    counts = np.bincount(np.floor(records.arrival_s - start_s).astype(np.int64).clip(0, n_ticks - 1), minlength=n_ticks)
    result = IntervalResult.of(
        arrivals=np.array([float(records.arrival_s.size)]),
        peak_rate_rps=np.array([float(counts.max(initial=0))]),
        in_slo=in_slo[None],
        served=served_by[None],
        over_slo=np.array([float(served_by.sum() - in_slo.sum())]),
        dropped=np.array([float((~served).sum())]),
        lost=np.array([float(engine.take_lost())]),
        busy=busy[None],
        p50_ms=p50[None],
        p99_ms=p99[None],
        p50_ms_all=np.array([p50_all]),
        p99_ms_all=np.array([p99_all]),
    )
    return new_state, result
