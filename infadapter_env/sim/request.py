"""The request-level reference simulator (``simulator="request"``): every request, one by one.

Each request gets an arrival time (``infadapter_env.world.arrivals``), a variant (the dispatcher), a
replica of that variant (``replica_routing``: uniformly at random, as the Kubernetes Service in front
of the original's TF-Serving pods picks one under kube-proxy's default iptables mode; or each in turn,
as its IPVS mode's default scheduler does; either way a replica whose queue is full is not passed
over for another of the same variant), a place
in that replica's FIFO queue, a service time (``infadapter_env.world.service_model``) and so a latency;
or it is dropped. Per replica the queue is exact (``queueing.fifo_finish_times``' rule: start when
arrived and a worker is free).

Dispatchers (``state`` = what serves now; ``cap`` = the serving capacity at the SLO, from the
profile):

- ``accuracy_first``: each request of a second that brings n requests goes to variant v with
  probability ``share_v / n``, the shares being the fast model's split of n (most accurate first,
  up to ``cap``; the excess to the most accurate variant): the dispatcher knows the current rate.
  A variant thus receives a random thinning of each second's count, which is less bursty than a
  Poisson stream when it takes most of the second (the fast model's latency tables assume Poisson).
  A replica whose queue is full passes the request on to the other variants in order of accuracy;
  with no room anywhere the request is dropped;
- ``proportional``: a variant drawn with probability proportional to ``cap``; dropped if full;
- ``quota``: the original dispatcher's interleaved weighted round robin
  (``auto_tuner/dispatcher/main.py``) over integer quotas, restarted when they change (as its
  ``/reset`` does); dropped if full. The quotas are ``round(cap)`` (what the original starts
  with) unless the controller set its planned ones (``InfAdapterEnv.set_quotas``, the original
  adapter's ``/reset`` call), which route from the second every load of their deployment is done
  (the adapter posts them after the readiness wait; ``sim.cluster.QuotaPlan``); variants that do not
  serve are skipped, and where no serving variant has a quota the round robin runs over ``round(cap)``.

A request finding a free worker starts at once; otherwise it waits if its replica's queue holds
fewer than ``queue_factor x cap / replicas`` waiting requests (TF-Serving's ``max_enqueued_batches``;
the paper code set 1.25 x its planning capacity, 0.8 x the linear fit, which is 15-25 % below the
measured ``cap`` used here), else it is dropped. A changed variant switches to its new
deployment at the start of second ``ceil(load time)`` after the decision (the fast model's rule);
requests still waiting in the old replicas then move, in order, to the new ones as their
queues have room (the rest, and all of them if the variant stops, are lost and counted as dropped).
Per interval it also reports the P99 of each 5 s window of completion times as the original
experiments read it (``infadapter_env.sim.latency_histogram``; a request completing after the interval's end
counts in its last window). Latencies are attributed to the interval in which a request arrived; a
request still waiting when a later decision's change takes effect is rescheduled, and only then can
its already reported latency differ from its final one (``info["rescheduled_late"]`` counts them:
rare, as waits are bounded near a second and loads take 6.4 s or more). Requests that the load
generator sends after the episode's last second are not played, like the seconds after the last
whole interval.

The loops over requests and the interval's statistics run compiled (``sim.request_kernels``) on
arrays of replica state; this module holds the episode, the deployment changes (rare, in Python)
and draws every random number: per interval the dispatcher's uniforms, service times in chunks of
``SERVICE_CHUNK`` per (variant, cores) when the last one runs out, and a uniform per request moved
at a change. ``tests/sim/request_oracle.py`` is the same simulator in plain Python, one request at
a time; on one seed both give equal outcomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from infadapter_env.sim import request_kernels as kernels
from infadapter_env.sim.cluster import DISPATCHERS, REPLICA_ROUTINGS, ClusterState, IntervalResult, QuotaPlan
from infadapter_env.sim.fast import ServerTables
from infadapter_env.sim.latency_histogram import BUCKET_UPPER_MS, EXPERIMENT_WINDOW_S
from infadapter_env.world.arrivals import request_times, whole_counts
from infadapter_env.world.profiles import CapacityProfile
from infadapter_env.world.service_model import ServiceModel

SERVICE_CHUNK = 2048
MAX_EPISODE_REQUESTS = 50_000_000  # about 2 GB of request times and 4 min of simulation
# A replica's ring holds its waiting requests (at most its bound) and one more; where the bound is
# larger it starts at this depth, and all rings double when one is full of waiting requests.
FIRST_QUEUE_DEPTH = 1024
UNBOUNDED = 2**62  # the bound of a queue that takes every request
NO_REQUESTS = kernels.Interval(  # before the first interval
    np.zeros(0), np.zeros(1, dtype=np.int64), np.zeros((2, 0)), np.zeros(0, dtype=np.int64), np.zeros(0)
)


@dataclass
class RequestRecords:
    """The requests of one interval: arrival (s), variant (-1: dropped), latency (s, NaN: dropped)."""

    arrival_s: np.ndarray
    variant: np.ndarray
    latency_s: np.ndarray


def no_replicas(n_variants: int) -> kernels.Replicas:
    """The replica state of a cluster that serves nothing."""
    return replica_rows(0, 0, 0, 0, 0, 0.0, 1, 2)._replace(first=np.zeros(n_variants + 1, dtype=np.int64))


def waiting_bound(bound: float) -> int:
    """The most requests that may wait where a request waits only while fewer than ``bound`` do."""
    if not bound > 0:
        return 0
    return math.ceil(bound) if bound < UNBOUNDED else UNBOUNDED


def replica_rows(
    count: int, variant: int, cores: int, bound: int, workers: int, now: float, width: int, depth: int
) -> kernels.Replicas:
    """``count`` idle replicas of ``variant`` with ``cores``, ``workers`` free from ``now``, as
    rows of ``width`` workers (a heap: free at ``now``, then never) and ``depth`` queue entries
    (``first`` left empty); at most ``bound`` requests wait."""
    free_at = np.full((count, width), np.inf)
    free_at[:, :workers] = now
    return kernels.Replicas(
        np.zeros(0, dtype=np.int64),
        np.full(count, variant, dtype=np.int64),
        np.full(count, cores, dtype=np.int64),
        np.full(count, bound, dtype=np.int64),
        free_at,
        np.zeros((count, depth)),
        np.zeros((count, depth), dtype=np.int64),
        np.zeros((count, depth)),
        np.zeros(count, dtype=np.int64),
        np.zeros(count, dtype=np.int64),
    )


def resized(replicas: kernels.Replicas, width: int, depth: int) -> kernels.Replicas:
    """``replicas`` with room for ``width`` workers and ``depth`` queue entries per replica (at
    least what they have), each ring buffer laid out from its first entry."""
    old_width, old_depth = replicas.free_at.shape[1], replicas.queue_start.shape[1]
    free_at = np.full((replicas.variant.size, width), np.inf)
    free_at[:, :old_width] = replicas.free_at
    slots = (replicas.head[:, None] + np.arange(old_depth)) % old_depth

    def laid_out(ring: np.ndarray) -> np.ndarray:
        out = np.zeros((ring.shape[0], depth), dtype=ring.dtype)
        out[:, :old_depth] = np.take_along_axis(ring, slots, axis=1)
        return out

    return replicas._replace(
        free_at=free_at,
        queue_start=laid_out(replicas.queue_start),
        queue_index=laid_out(replicas.queue_index),
        queue_arrival=laid_out(replicas.queue_arrival),
        head=np.zeros_like(replicas.head),
    )


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
        if dispatcher not in DISPATCHERS:
            raise ValueError(f"dispatcher must be one of {', '.join(map(repr, DISPATCHERS))}; got {dispatcher!r}")
        if replica_routing not in REPLICA_ROUTINGS:
            raise ValueError(
                f"replica_routing must be one of {', '.join(map(repr, REPLICA_ROUTINGS))}; got {replica_routing!r}"
            )
        self.profile = profile
        self.service = service
        self.dispatcher = dispatcher
        self.queue_factor = queue_factor
        self.arrival_process = arrivals
        self.rng = rng
        n_var = len(profile.variants)
        self.n_variants = n_var
        self.serving: list[tuple[int, int]] = [(0, 0)] * n_var
        self.replicas = no_replicas(n_var)
        n_cores = service.workers.shape[1]
        self._draws = kernels.ServiceDraws(
            np.zeros((n_var, n_cores, SERVICE_CHUNK)), np.full((n_var, n_cores), SERVICE_CHUNK, dtype=np.int64)
        )
        self._dispatch = kernels.Dispatch(
            DISPATCHERS.index(dispatcher),
            np.zeros(n_var),
            np.zeros(n_var),
            np.zeros(n_var, dtype=np.int64),
            np.zeros(n_var, dtype=np.int64),
            np.array([0, 1, 0], dtype=np.int64),  # the round robin: (index, round), no quotas yet
            np.zeros(n_var),
            REPLICA_ROUTINGS.index(replica_routing),
            np.zeros(n_var, dtype=np.int64),  # each variant's next replica in turn (round robin)
        )
        self._times = np.zeros(0)
        self._interval: kernels.Interval | None = None  # the last interval's requests and outcomes
        self._moment = np.zeros(2)  # (arrival, now) of a request queued first (``run_ticks``)
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
        self.replicas = no_replicas(self.n_variants)
        self._draws.used[:] = SERVICE_CHUNK  # none drawn
        self._dispatch.rr[:] = (0, 1, 0)
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
        draws = self.rng.random((2, n))  # the variant (and the replica in it); a replica elsewhere
        tick_start = self._bounds[start_s : start_s + n_ticks + 1] - first
        interval = kernels.Interval(times, tick_start, draws, np.full(n, -1, dtype=np.int64), np.full(n, np.nan))
        self._interval = interval
        self._dispatch.service_s[:] = 0.0  # what the servers could complete, per variant
        changes = {t for t in ready_tick if 0 <= t <= n_ticks}
        if planned_quotas is not None:
            changes.add(planned_quotas[0])
        tick = 0
        while True:
            for v in range(self.n_variants):
                if ready_tick[v] == tick and self.serving[v] != target[v]:
                    self._switch(v, *target[v], float(start_s + tick), interval)
            if planned_quotas is not None and planned_quotas[0] == tick:
                self.quotas = planned_quotas[1]
            if tick == n_ticks:  # a load finishing with the interval serves from the next one on
                break
            stop = min((t for t in changes if t > tick), default=n_ticks)
            self._run(interval, tick, min(stop, n_ticks))
            tick = min(stop, n_ticks)
        self.service_seconds = self._dispatch.service_s.copy()
        return RequestRecords(times, interval.variant, interval.finish_s - times)

    def interval_stats(self, start_s: int, n_ticks: int, slo_ms: float) -> kernels.IntervalStats:
        """The last interval's statistics (``request_kernels.IntervalStats``); its 5 s window P99s
        become ``window_p99_ms``."""
        assert self._interval is not None, "run_interval first"
        n_windows = math.ceil(n_ticks / EXPERIMENT_WINDOW_S)
        stats = kernels.IntervalStats.empty(self.n_variants, n_windows)
        kernels.interval_stats(
            self._interval, float(start_s), n_ticks, slo_ms, EXPERIMENT_WINDOW_S, BUCKET_UPPER_MS, stats
        )
        self.window_p99_ms = stats.window_p99_ms
        return stats

    def waiting(self, now: float) -> np.ndarray:
        """Requests waiting (not yet started) in each variant's queues at time ``now``."""
        out = np.zeros(self.n_variants)
        kernels.waiting(self.replicas, float(now), out)
        return out

    def take_lost(self) -> int:
        """Waiting requests lost when their variant stopped, since the last call."""
        lost, self._lost = self._lost, 0
        return lost

    # ------------------------------------------------------------------ internals
    def _capacity(self, v: int) -> float:
        r, c = self.serving[v]
        return r * float(self.profile.per_replica_rps[v, c]) if r and c else 0.0

    def _quota_now(self) -> list[int]:
        """The quotas the round robin runs over: the controller's, else ``round(cap)``, of the
        variants that serve."""
        serves = np.diff(self.replicas.first) > 0
        quotas = [0] * self.n_variants
        if self.quotas is not None:
            quotas = [round(q) if serves[v] else 0 for v, q in enumerate(self.quotas)]
        if max(quotas) <= 0:
            quotas = [round(self._capacity(v)) if serves[v] else 0 for v in range(self.n_variants)]
        return quotas

    def _next_quota(self) -> int | None:
        """The quota dispatcher's next variant (None: no variant has a quota)."""
        self._dispatch.quota[:] = self._quota_now()
        v = int(kernels.next_quota(self._dispatch))
        return None if v < 0 else v

    def _run(self, interval: kernels.Interval, tick: int, stop: int) -> None:
        """Seconds ``tick`` to ``stop`` of the interval, in which what serves does not change."""
        dispatch = self._dispatch
        for v, (r, c) in enumerate(self.serving):
            dispatch.capacity_rps[v] = self._capacity(v)
            dispatch.service_rps[v] = r * float(self.service.service_rps[v, c]) if r and c else 0.0
        if self.dispatcher == "quota":
            dispatch.quota[:] = self._quota_now()
        self._kernel(interval, np.array([tick, stop, -1, -1], dtype=np.int64))

    def _kernel(self, interval: kernels.Interval, cursor: np.ndarray) -> None:
        """``run_ticks`` from ``cursor`` to the end, drawing the service times it asks for."""
        while (
            answer := kernels.run_ticks(interval, self.replicas, self._draws, self._dispatch, cursor, self._moment)
        ) != kernels.OK:
            self._provide(answer)

    def _provide(self, answer: int) -> None:
        """What a kernel stopped for: deeper queues, or the next chunk of a (variant, cores)'s
        service times, drawn here (where the request that needs it is served)."""
        if answer == kernels.GROW:
            self.replicas = resized(
                self.replicas, self.replicas.free_at.shape[1], 2 * self.replicas.queue_start.shape[1]
            )
            return
        v, cores = divmod(answer, self._draws.used.shape[1])
        self._draws.seconds[v, cores] = self.service.draw_service_s(v, cores, self.rng, SERVICE_CHUNK)
        self._draws.used[v, cores] = 0

    def _serve(self, r: int, i: int, arrival: float, now: float, interval: kernels.Interval) -> None:
        """Queue request ``i`` (-1: of an earlier interval), arrived at ``arrival``, on replica
        ``r`` at ``now`` (it moves at a change)."""
        self._moment[:] = arrival, now
        self._kernel(interval, np.array([0, 0, i, r], dtype=np.int64))

    def _lose(self, index: int, interval: kernels.Interval) -> None:
        self._lost += 1
        if index >= 0:
            interval.variant[index] = -1
            interval.finish_s[index] = np.nan

    def _set_variant(self, v: int, count: int, cores: int, now: float) -> None:
        """Variant ``v``'s replicas become ``count`` idle ones with ``cores``."""
        old = self.replicas
        workers = int(self.service.workers[v, cores]) if count else 0
        bound = waiting_bound(self.queue_factor * float(self.profile.per_replica_rps[v, cores])) if count else 0
        width = max(old.free_at.shape[1], workers)
        depth = max(old.queue_start.shape[1], min(bound, FIRST_QUEUE_DEPTH) + 2)
        if (width, depth) != (old.free_at.shape[1], old.queue_start.shape[1]):
            old = resized(old, width, depth)
        rows = replica_rows(count, v, cores, bound, workers, now, width, depth)
        lo, hi = int(old.first[v]), int(old.first[v + 1])
        first = old.first.copy()
        first[v + 1 :] += count - (hi - lo)
        spliced = [np.concatenate([mine[:lo], new, mine[hi:]]) for mine, new in zip(old[1:], rows[1:], strict=True)]
        self.replicas = kernels.Replicas(first, *spliced)
        self._dispatch.next_replica[v] = 0  # a new set of replicas: the round robin starts at the first

    def _switch(self, v: int, replicas: int, cores: int, now: float, interval: kernels.Interval | None) -> None:
        """Variant ``v`` now serves ``replicas`` x ``cores``; waiting requests move to the new replicas."""
        old = self.replicas
        waiting: list[tuple[float, int, float]] = []
        for r in range(int(old.first[v]), int(old.first[v + 1])):
            slots = (old.head[r] + np.arange(old.size[r])) % old.queue_start.shape[1]
            entries = zip(
                old.queue_start[r, slots].tolist(),
                old.queue_index[r, slots].tolist(),
                old.queue_arrival[r, slots].tolist(),
                strict=True,
            )
            waiting.extend(entry for entry in entries if entry[0] > now)
        waiting.sort()
        self.serving[v] = (replicas, cores) if replicas and cores else (0, 0)
        self._set_variant(v, *self.serving[v], now)
        first, count = int(self.replicas.first[v]), int(self.replicas.first[v + 1] - self.replicas.first[v])
        interval = NO_REQUESTS if interval is None else interval
        for _, i, arrival in waiting:
            index = i if 0 <= i < interval.arrival_s.size and interval.arrival_s[i] == arrival else -1
            if index < 0:
                self.rescheduled_late += 1
            if not count:
                self._lose(index, interval)
                continue
            draw = float(self.rng.random())  # (drawn under either routing: one random stream)
            if self._dispatch.routing == kernels.ROUND_ROBIN_REPLICA:
                turn = int(self._dispatch.next_replica[v])
                self._dispatch.next_replica[v] = (turn + 1) % count
                r = first + turn
            else:
                r = first + min(int(draw * count), count - 1)
            if not kernels.has_room(self.replicas, r, now):  # the new replicas' queues are full: lost
                self._lose(index, interval)
                continue
            self._serve(r, index, arrival, now, interval)


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
    stats = engine.interval_stats(start_s, n_ticks, tables.slo_s * 1000.0)
    end_s = float(start_s + n_ticks)
    finished = np.array([r <= n_ticks for r in ready])
    new_replicas = np.where(finished, state.replicas[0], state.serving_replicas[0])
    new_cores = np.where(finished, state.cores[0], state.serving_cores[0])
    busy = np.minimum(stats.served / np.maximum(engine.service_seconds, 1e-12), 1.0)
    new_state = ClusterState(
        state.replicas,
        state.cores,
        new_replicas[None],
        new_cores[None],
        np.where(finished, 0.0, loading - n_ticks)[None],
        engine.waiting(end_s)[None],
        np.zeros((1, n_var)),  # the request-level queue is exact: no spread to track
    )
    result = IntervalResult.of(
        arrivals=np.array([float(records.arrival_s.size)]),
        peak_rate_rps=stats.counts[1:],
        in_slo=stats.in_slo[None],
        served=stats.served[None],
        over_slo=np.array([float(stats.served.sum() - stats.in_slo.sum())]),
        dropped=stats.counts[:1],
        lost=np.array([float(engine.take_lost())]),
        busy=busy[None],
        p50_ms=stats.p50_ms[None],
        p99_ms=stats.p99_ms[None],
        p50_ms_all=stats.overall_ms[:1],
        p99_ms_all=stats.overall_ms[1:],
    )
    return new_state, result
