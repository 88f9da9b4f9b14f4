"""Live mode (``gym.make("InfAdapter-v0", backend="live", ...)``): each step applies the deployment
to real model servers and replays the trace's interval as real requests at real times.

``LiveCluster.interval`` is a ``pipeline.Simulate``, like the request-level simulator: the env's
decoding, scoring, observation and info are the simulators'. Per interval:

1. **Deploy.** One Ray Serve application per variant (``serving.server``), ``replicas`` replicas of
   ``cores`` single-threaded workers each; every replica takes its CPUs from a pool (least used
   first, shared when the machine has too few). A changed variant is redeployed in the background
   and Serve replaces its replicas as a rolling update: the old ones answer until the new ones
   do. A new variant serves once it answers; a removed one is deleted once every variant started
   by the same decision answers (make before break), at once if there is none.
2. **Replay.** The interval's per-second counts (``whole_counts``) become send times by the env's
   ``arrivals`` process; an open-loop sender posts each request at its time to the variant the
   ``accuracy_first`` dispatcher picks among those serving: the most accurate one still under its
   capacity at the SLO (``th``) this second, else the most accurate one whose waiting requests are
   under ``queue_factor x th`` plus its workers, else the request is dropped.
3. **Measure.** Every request's latency from its send. After the last send the interval waits up
   to ``max(2 x SLO, 5 s)`` for answers; a request still unanswered then counts as served over the
   SLO (it is late whatever it does) with the latency it had so far. A failed request (an HTTP
   error, a refused connection) counts as dropped and in ``info["failed_requests"]``.

Faults: every second the cluster asks Serve how many replicas of each serving variant run; one
that stopped (a killed server process) is counted in ``info["replicas_lost"]``. Serve restarts it
and its proxy holds the requests meanwhile, so they arrive late (over the SLO) rather than fail;
either way every request is accounted for: in the SLO, over it, or dropped.

Requests are attributed to the interval in which they were sent, as in the simulators. Only the
``accuracy_first`` dispatcher runs live.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infadapter_env.parallel import usable_cpus
from infadapter_env.serving.loadgen import post
from infadapter_env.serving.models import ModelSpec, model_spec
from infadapter_env.serving.server import READY_TIMEOUT_S, ModelReplica, ServeBackend
from infadapter_env.sim.cluster import ClusterState, IntervalResult, QuotaPlan
from infadapter_env.world.arrivals import request_times, whole_counts
from infadapter_env.world.profiles import CapacityProfile, World

POOL_NAME = "infadapter-cpu-pool"
REQUEST_TIMEOUT_S = 60.0


class CpuPool:
    """A Ray actor handing out CPUs to replicas, the least used first."""

    def __init__(self, cpus: list[int]) -> None:
        self.load = dict.fromkeys(cpus, 0)
        self.owners: dict[str, list[int]] = {}

    def take(self, owner: str, count: int) -> list[int]:
        chosen = sorted(self.load, key=lambda c: (self.load[c], c))[:count]
        for cpu in chosen:
            self.load[cpu] += 1
        self.owners[owner] = chosen
        return chosen

    def give_back(self, owner: str) -> None:
        for cpu in self.owners.pop(owner, []):
            self.load[cpu] -= 1


class LiveReplica(ModelReplica):
    """A replica that takes its ``cores`` CPUs from the pool and gives them back when it stops."""

    def __init__(self, spec: ModelSpec, cores: int) -> None:
        import ray

        self.owner = uuid.uuid4().hex
        self.pool = ray.get_actor(POOL_NAME)
        super().__init__(spec, ray.get(self.pool.take.remote(self.owner, cores)))

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # the cluster may be gone already
            self.pool.give_back.remote(self.owner)

    def pid(self) -> int:
        import os

        return os.getpid()


@dataclass
class Variant:
    """What one variant serves and is becoming."""

    serving: tuple[int, int] = (0, 0)  # (replicas, cores) answering now
    target: tuple[int, int] = (0, 0)
    ready_at: float | None = None  # when the target answered (None: not yet)
    started_at: float = 0.0
    failed: str | None = None
    healthy: bool = True  # every replica of what serves is running


@dataclass
class Requests:
    """One interval's requests (arrays of the same length)."""

    sent_s: np.ndarray
    variant: np.ndarray  # -1: dropped by the dispatcher
    latency_ms: np.ndarray
    ok: np.ndarray
    answered: np.ndarray  # False: still unanswered when the interval stopped waiting
    extra: dict[str, int] = field(default_factory=dict)


class LiveCluster:
    """Real model servers behind ``InfAdapter-v0``'s step (``backend="live"``)."""

    def __init__(
        self,
        world: World,
        profile: CapacityProfile,
        slo_ms: int,
        queue_factor: float,
        arrivals: str,
        rng: np.random.Generator,
        address: str | None = None,
        cpus: list[int] | None = None,
    ) -> None:
        self.world = world
        self.profile = profile
        self.specs = [model_spec(name) for name in profile.names]
        self.slo_ms = slo_ms
        self.queue_factor = queue_factor
        self.arrivals = arrivals
        self.rng = rng
        self.backend = ServeBackend(address)
        self.cpus = cpus
        self.variants = [Variant() for _ in self.specs]
        self.failed_requests = 0
        self.abandoned = 0
        self.replicas_lost = 0  # replicas of a serving variant found not running, this interval
        self._lock = threading.Lock()
        self._pool: Any = None  # the CpuPool actor

    # ------------------------------------------------------------------ servers
    def start(self) -> LiveCluster:
        import ray

        self.backend.start()
        cpus = self.cpus
        if cpus is None:
            cpus = usable_cpus()
        self._pool = ray.remote(CpuPool).options(name=POOL_NAME, get_if_exists=True).remote(list(cpus))
        return self

    def stop(self) -> None:
        self.backend.stop()

    def reset_to(self, state: ClusterState, timeout_s: float = 300.0) -> None:
        """Serve ``state``'s deployment (an episode's start): deploy it, wait until it answers, remove
        every other variant."""
        self.apply(state)
        deadline = time.perf_counter() + timeout_s
        while any(x.target != (0, 0) and x.ready_at is None and x.failed is None for x in self.variants):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"live mode: the starting deployment did not answer within {timeout_s:.0f} s")
            time.sleep(0.2)
        self.settle()

    def name(self, v: int) -> str:
        return self.profile.names[v].replace("_", "-")

    def _deploy(self, v: int, replicas: int, cores: int) -> None:
        """Deploy (or update) variant ``v`` and note when it answers (runs in a thread)."""
        variant = self.variants[v]
        try:
            # CPUs come from the pool (Ray's own accounting would refuse to share them)
            self.backend.run(self.name(v), LiveReplica, (self.specs[v], cores), num_cpus=0, num_replicas=replicas)
            self.backend.wait_ready(self.name(v), time.perf_counter() + READY_TIMEOUT_S)
        except Exception as error:
            with self._lock:
                variant.failed = repr(error)
            return
        with self._lock:
            if variant.target == (replicas, cores):
                variant.ready_at = time.perf_counter()

    def apply(self, state: ClusterState) -> None:
        """Start every change the target deployment asks for."""
        for v, variant in enumerate(self.variants):
            target = (int(state.replicas[0, v]), int(state.cores[0, v]))
            if target[0] == 0 or target[1] == 0:
                target = (0, 0)
            if target == variant.target:
                continue
            with self._lock:
                variant.target, variant.ready_at, variant.started_at = target, None, time.perf_counter()
            if target != (0, 0):
                threading.Thread(target=self._deploy, args=(v, *target), daemon=True).start()

    def settle(self) -> None:
        """Variants whose target answers serve it; removed variants go once nothing started is loading."""
        from ray import serve

        with self._lock:
            for variant in self.variants:
                if variant.failed:
                    raise RuntimeError(f"live mode: a model server could not be deployed: {variant.failed}")
                if variant.ready_at is not None:
                    variant.serving = variant.target
            loading = any(v.target != (0, 0) and v.ready_at is None for v in self.variants)
            removed = [v for v, x in enumerate(self.variants) if x.target == (0, 0) and x.serving != (0, 0)]
        if not loading:
            for v in removed:
                serve.delete(self.name(v))
                self.variants[v].serving = (0, 0)
        self._check_health()

    def _check_health(self) -> None:
        """Count replicas of serving, settled variants that stopped running (a killed server process;
        Serve restarts it, and holds its requests meanwhile, so they arrive late rather than fail)."""
        from ray import serve

        settled = [
            v for v, x in enumerate(self.variants) if x.serving != (0, 0) and x.serving == x.target and x.ready_at
        ]
        if not settled:
            return
        applications = serve.status().applications
        for v in settled:
            variant = self.variants[v]
            application = applications.get(self.name(v))
            deployments = application.deployments if application else {}
            running = sum(
                count
                for d in deployments.values()
                for state, count in d.replica_states.items()
                if getattr(state, "value", state) == "RUNNING"
            )
            missing = variant.serving[0] - running
            if missing > 0 and variant.healthy:
                self.replicas_lost += missing
            variant.healthy = missing <= 0

    # ------------------------------------------------------------------ one interval
    def interval(
        self, state: ClusterState, per_tick: np.ndarray, quotas: QuotaPlan | None = None
    ) -> tuple[ClusterState, IntervalResult]:
        """Play ``per_tick`` (1, T) requests per second on the servers (``pipeline.Simulate``)."""
        n_ticks = per_tick.shape[1]
        self.replicas_lost = 0
        self.apply(state)
        times = request_times(whole_counts(per_tick[0]), self.arrivals, self.rng)
        requests = asyncio.run(self._replay(times, n_ticks))
        return self._result(state, requests, n_ticks)

    def _capacity(self, v: int) -> tuple[float, int]:
        """(th at the SLO, workers) of what variant ``v`` serves now."""
        replicas, cores = self.variants[v].serving
        if replicas == 0:
            return 0.0, 0
        return replicas * float(self.profile.per_replica_rps[v, cores]), replicas * cores

    async def _replay(self, times: np.ndarray, n_ticks: int) -> Requests:
        import aiohttp

        n = times.size
        variant = np.full(n, -1)
        latency = np.full(n, np.nan)
        ok = np.zeros(n, dtype=bool)
        answered = np.zeros(n, dtype=bool)
        sent = np.full(n, np.nan)
        waiting = [0] * len(self.variants)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
            start = time.perf_counter()

            async def one(i: int, v: int) -> None:
                began = time.perf_counter()
                sent[i] = began - start
                waiting[v] += 1
                try:
                    ok[i] = await post(session, self.backend.url(self.name(v)))
                finally:
                    waiting[v] -= 1
                latency[i] = (time.perf_counter() - began) * 1000.0
                answered[i] = True

            tasks = []
            second = -1
            this_second = [0] * len(self.variants)
            capacity = [(0.0, 0)] * len(self.variants)
            for i in range(n):
                delay = start + times[i] - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if int(times[i]) != second:  # a new second: who serves, at what capacity
                    second = int(times[i])
                    self.settle()
                    capacity = [self._capacity(v) for v in range(len(self.variants))]
                    this_second = [0] * len(self.variants)
                v = self._dispatch(capacity, this_second, waiting)
                if v < 0:
                    sent[i] = time.perf_counter() - start
                    continue
                this_second[v] += 1
                variant[i] = v
                tasks.append(asyncio.create_task(one(i, v)))
            while time.perf_counter() - start < n_ticks:  # the interval lasts its seconds
                self.settle()
                await asyncio.sleep(min(1.0, n_ticks - (time.perf_counter() - start)))
            wait_s = max(2.0 * self.slo_ms / 1000.0, 5.0)
            if tasks:
                await asyncio.wait(tasks, timeout=wait_s)
            late = [t for t in tasks if not t.done()]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            now = time.perf_counter() - start
        unanswered = (variant >= 0) & ~answered
        latency[unanswered] = (now - sent[unanswered]) * 1000.0
        return Requests(sent, variant, latency, ok, answered)

    def _dispatch(self, capacity: list[tuple[float, int]], this_second: list[int], waiting: list[int]) -> int:
        """``accuracy_first``: the most accurate variant under its ``th`` this second, else the most
        accurate one with room in its queue; -1: dropped."""
        order = range(len(capacity) - 1, -1, -1)
        for v in order:
            if capacity[v][0] > 0 and this_second[v] < capacity[v][0]:
                return v
        for v in order:
            th, workers = capacity[v]
            if th > 0 and waiting[v] < self.queue_factor * th + workers:
                return v
        return -1

    def _result(self, state: ClusterState, r: Requests, n_ticks: int) -> tuple[ClusterState, IntervalResult]:
        n_var = len(self.variants)
        slo = float(self.slo_ms)
        admitted = r.variant >= 0
        failed = admitted & r.answered & ~r.ok
        served = admitted & ~failed  # answered, or still waiting (late)
        self.failed_requests = int(failed.sum())
        self.abandoned = int((admitted & ~r.answered).sum())
        in_time = served & r.answered & (r.latency_ms <= slo)
        by = np.where(served, r.variant, n_var)
        in_slo = np.bincount(np.where(in_time, r.variant, n_var), minlength=n_var + 1)[:n_var].astype(float)
        served_by = np.bincount(by, minlength=n_var + 1)[:n_var].astype(float)
        counts = np.bincount(np.clip(np.floor(r.sent_s).astype(np.int64), 0, n_ticks - 1), minlength=n_ticks)
        service = self.world.service_model.service_rps
        p50 = np.zeros(n_var)
        p99 = np.zeros(n_var)
        busy = np.zeros(n_var)
        for v in range(n_var):
            mine = r.latency_ms[served & (r.variant == v)]
            if mine.size:
                p50[v], p99[v] = np.percentile(mine, [50, 99])
            replicas, cores = self.variants[v].serving
            mu = replicas * float(service[v, cores]) if replicas else 0.0
            busy[v] = min(served_by[v] / max(mu * n_ticks, 1e-12), 1.0) if mu else 0.0
        all_served = r.latency_ms[served]
        p50_all, p99_all = np.percentile(all_served, [50, 99]) if all_served.size else (0.0, 0.0)
        now = time.perf_counter()
        serving = np.array([[x.serving[0] for x in self.variants]], dtype=np.int64)
        serving_cores = np.array([[x.serving[1] for x in self.variants]], dtype=np.int64)
        loading = np.array(
            [
                [
                    0.0
                    if x.ready_at is not None or x.target == (0, 0)
                    else max(float(self.profile.load_time_s[v]) - (now - x.started_at), 0.5)
                    for v, x in enumerate(self.variants)
                ]
            ]
        )
        waiting = np.bincount(np.where(admitted & ~r.answered, r.variant, n_var), minlength=n_var + 1)[:n_var]
        new_state = ClusterState(
            state.replicas,
            state.cores,
            serving,
            serving_cores,
            loading,
            waiting.astype(float)[None],
            np.zeros((1, n_var)),
        )
        over = float(served.sum() - in_time.sum())
        result = IntervalResult.of(
            arrivals=np.array([float(r.sent_s.size)]),
            peak_rate_rps=np.array([float(counts.max(initial=0))]),
            in_slo=in_slo[None],
            served=served_by[None],
            over_slo=np.array([over]),
            dropped=np.array([float((~admitted).sum() + failed.sum())]),
            lost=np.array([0.0]),
            busy=busy[None],
            p50_ms=p50[None],
            p99_ms=p99[None],
            p50_ms_all=np.array([float(p50_all)]),
            p99_ms_all=np.array([float(p99_all)]),
        )
        return new_state, result
