"""Does the profiler's 2-s burst under-read a server's sustained throughput? The original profiler's
saturation test, beside a sustained overload, on a real model server of this machine.

    infadapter speed-tests --models resnet18 resnet34 resnet50 --cores 1

Per model, served on ``--cores`` CPUs by ``infadapter profile``'s server (``serving.server``):

- the saturation test as the original took it (``serving.profiler``): a Poisson burst at 30 x
  cores req/s for 2 s, the answer rate over the last 2 s of completions, ``--repeats`` times, a
  second apart; its reading is the largest;
- a sustained overload: Poisson arrivals at ``--overload`` (1.5) x that reading for
  ``--sustained-s`` seconds (60), the completions per second after the first ``--settle-s`` (20),
  when the queue has long been full: what the server completes when it never waits for work (a
  lower ``--overload`` keeps fewer requests pending in the proxy and the load generator).

The ratio of the burst reading to the sustained rate says by how much the profile's
``saturation_tp`` under-reads (below 1) or over-reads a server. Writes ``speed_tests.json`` (the
readings, command, seed, versions) and ``summary.md`` (the table) into ``--out`` and prints the table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infadapter_env.options import option
from infadapter_env.parallel import usable_cpus
from infadapter_env.provenance import git_commit
from infadapter_env.serving.loadgen import LoadResult, poisson_times, send
from infadapter_env.serving.models import ModelSpec, model_spec
from infadapter_env.serving.profiler import server_cpus

BURST_RPS_PER_CORE = 30.0  # the original profiler's saturation burst
BURST_S = 2.0


@dataclass
class SpeedOptions:
    """Read a real server's speed by the profiler's burst and by a sustained overload."""

    models: list[str] = option(["resnet18", "resnet34", "resnet50"], "models to serve")
    cores: int = option(1, "CPUs of the server")
    repeats: int = option(5, "saturation bursts (the original: 5)")
    sustained_s: float = option(60.0, "length of the sustained overload (s)")
    settle_s: float = option(20.0, "seconds of the overload before completions are counted")
    overload: float = option(1.5, "the overload's rate as a multiple of the burst reading (above 1)")
    seed: int = option(0, "seed of the arrival times")
    out: str = option("results/speed-tests", "output folder")


def completions_per_s(result: LoadResult, after_s: float, until_s: float) -> float:
    """Answers per second whose completion falls in [``after_s``, ``until_s``) from the start."""
    done = result.sent_s[result.ok] + result.latency_ms[result.ok] / 1000.0
    return float(((done >= after_s) & (done < until_s)).sum() / max(until_s - after_s, 1e-9))


def read_speed(url: str, cores: int, rng: np.random.Generator, options: SpeedOptions) -> dict[str, Any]:
    """The burst readings and the sustained rate of the server at ``url``."""
    bursts = []
    for _ in range(options.repeats):
        bursts.append(send(url, poisson_times(rng, BURST_RPS_PER_CORE * cores, BURST_S)).throughput(BURST_S))
        time.sleep(1.0)  # as the original: let the queue drain
    reading = max(bursts)
    offered = options.overload * reading
    overload = send(url, poisson_times(rng, offered, options.sustained_s), timeout_s=30.0 * options.sustained_s)
    sustained = completions_per_s(overload, options.settle_s, options.sustained_s)
    return {
        "burst_rps": [round(b, 2) for b in bursts],
        "saturation_reading_rps": round(reading, 2),
        "offered_rps": round(offered, 2),
        "sustained_rps": round(sustained, 2),
        "burst_over_sustained": round(reading / max(sustained, 1e-9), 3),
        "failed_requests": overload.failed,
    }


def run(options: SpeedOptions, command: str) -> dict[str, Any]:
    """Serve each model in turn and read its speed; write and return the record."""
    from infadapter_env.serving.server import ServeBackend

    specs: list[ModelSpec] = [model_spec(m) for m in options.models]
    cpus, spare = server_cpus(options.cores, usable_cpus())
    if spare and hasattr(os, "sched_setaffinity"):  # the load generator and Ray off the server's CPUs
        os.sched_setaffinity(0, set(spare))
    readings = {}
    backend = ServeBackend()
    backend.start()
    try:
        for spec in specs:
            name = f"{spec.name}-{options.cores}c".replace("_", "-")
            print(f"{name}: loading", file=sys.stderr, flush=True)
            backend.deploy(name, spec, cpus)
            rng = np.random.default_rng([options.seed, options.cores, sum(map(ord, spec.name))])
            readings[name] = read_speed(backend.url(name), options.cores, rng, options)
            print(f"{name}: {readings[name]}", file=sys.stderr, flush=True)
            backend.remove(name)
    finally:
        backend.stop()
    machine = {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    record: dict[str, Any] = {
        "command": command,
        "options": asdict(options),
        "readings": readings,
        "machine": machine,
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
        "git_commit": git_commit(),
    }
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed_tests.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "summary.md").write_text(
        f"# Speed tests\n\nMade by `{command}` at commit {record['git_commit']} "
        f"({machine['processor']}, {machine['cpus']} CPUs).\n\n{table(record)}\n"
    )
    return record


def table(record: dict[str, Any]) -> str:
    lines = [
        "| server | burst readings (req/s) | saturation reading | sustained (req/s) | burst / sustained |",
        "|---|---|---|---|---|",
    ]
    for name, r in record["readings"].items():
        lines.append(
            f"| {name} | {', '.join(f'{b:.1f}' for b in r['burst_rps'])} | {r['saturation_reading_rps']:.1f} | "
            f"{r['sustained_rps']:.1f} | {r['burst_over_sustained']:.3f} |"
        )
    return "\n".join(lines)
