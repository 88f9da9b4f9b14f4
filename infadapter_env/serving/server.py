"""The model server: Ray Serve, one application per (model, cores), pinned to given CPUs.

Why Ray Serve: people run it in production; it runs on one machine and on a cluster alike (the
profiler takes a cluster's ``--address``); it applies a changed deployment as a rolling update,
which is what InfAdapter's adapter asks of Kubernetes; and the project already depends on Ray for
training sweeps. MLServer and KServe's model server were the other candidates: both need a
Kubernetes-style runtime or per-model configuration files to do the same.

A replica serves like the servers the simulators model (``infadapter_env.world.service_model``):
``cores`` workers, each a thread running one request at a time single-threaded (torch's
intra-op threads = 1), taking requests from one FIFO queue; the replica's process is pinned to
its CPUs (``os.sched_setaffinity``). Requests are HTTP POSTs to ``http://127.0.0.1:<port>/<name>``;
the body is ignored (the replica holds a random input of the model's size, so the transfer of an
image does not enter the measurement) and the reply names the predicted class.

Start: ``ServeBackend().start()`` (``ray.init`` + ``serve.start``, HTTP on a free local port);
``deploy(name, spec, cpus)`` returns once the application answers a request (the readiness check:
``serve.run`` waits for the replica to report healthy, then a POST must succeed) and gives the
load time; ``remove(name)``; ``stop()``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from infadapter_env.serving.models import ModelSpec

READY_TIMEOUT_S = 300.0


class ModelReplica:
    """One replica: the model on ``cpus`` (a list of CPU ids), ``len(cpus)`` single-threaded workers."""

    def __init__(self, spec: ModelSpec, cpus: list[int]) -> None:
        import torch

        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(cpus))
        torch.set_num_threads(1)
        self.torch = torch
        self.model = spec.load()
        self.input = torch.randn(1, 3, spec.input_side, spec.input_side)
        self.workers = ThreadPoolExecutor(max_workers=len(cpus))
        for _ in range(2):  # warm-up: the first passes allocate
            self._infer()

    def _infer(self) -> int:
        with self.torch.inference_mode():
            return int(self.model(self.input).argmax())

    async def __call__(self, request: Any) -> dict[str, int]:
        label = await asyncio.get_running_loop().run_in_executor(self.workers, self._infer)
        return {"class": label}

    def memory_gb(self) -> float:
        """The replica process's resident memory (GB), from /proc (0 where there is none)."""
        try:
            with open("/proc/self/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024**2
        except OSError:
            pass
        return 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeBackend:
    """A Ray Serve instance (local, or on the cluster at ``address``) serving one application per
    profiled configuration."""

    def __init__(self, address: str | None = None, port: int | None = None) -> None:
        self.address = address
        self.port = port or free_port()
        self.started = False

    def start(self) -> ServeBackend:
        try:
            import ray
            from ray import serve
        except ImportError as error:
            raise RuntimeError(
                "real serving needs Ray Serve: pip install 'infadapter-gym[serve]' (or 'ray[serve]')"
            ) from error
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        self.started = True
        return self

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def run(self, name: str, replica: type, args: tuple, num_cpus: float, num_replicas: int = 1) -> Any:
        """Run (or update: Serve's rolling update) application ``name``: ``num_replicas`` replicas
        of ``replica(*args)``, each asking Ray for ``num_cpus``, queueing requests in the replica
        (FIFO, as TF-Serving's); returns once Serve reports it healthy (not yet that it answers:
        ``wait_ready``)."""
        from ray import serve

        deployment = serve.deployment(
            name=name,
            num_replicas=num_replicas,
            ray_actor_options={"num_cpus": num_cpus},
            max_ongoing_requests=1_000_000,
            health_check_period_s=1.0,
        )(replica)
        return serve.run(deployment.bind(*args), name=name, route_prefix=f"/{name}")

    def deploy(self, name: str, spec: ModelSpec, cpus: list[int]) -> tuple[float, float]:
        """Serve ``spec`` on ``cpus`` as application ``name``; returns (load time in s: from the
        deployment's creation to its first answer, resident memory of the replica in GB)."""
        started = time.perf_counter()
        handle = self.run(name, ModelReplica, (spec, list(cpus)), num_cpus=len(cpus))
        self.wait_ready(name, started + READY_TIMEOUT_S)
        load_s = time.perf_counter() - started
        memory = float(handle.memory_gb.remote().result())
        return load_s, memory

    def wait_ready(self, name: str, deadline: float) -> None:
        """Until a POST to the application succeeds; a clear error at ``deadline``."""
        last: Exception | None = None
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(urllib.request.Request(self.url(name), data=b"x"), timeout=30) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError) as error:
                last = error
            time.sleep(0.2)
        raise TimeoutError(f"the model server {name!r} did not answer within {READY_TIMEOUT_S:.0f} s ({last!r})")

    def remove(self, name: str) -> None:
        from ray import serve

        serve.delete(name)

    def stop(self) -> None:
        if not self.started:
            return
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()
        self.started = False

    def __enter__(self) -> ServeBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
