"""The profiler: measure a capacity profile of models on this machine's cores, as the InfAdapter
authors measured theirs (``auto_tuner/experiments/capacity_experiment.py``), on a Ray Serve
server (``serving.server``) instead of TF-Serving on Kubernetes.

Per configuration (model, cores): serve it on ``cores`` CPUs and time the load; the saturation
throughput is the largest of ``saturation_repeats`` answer rates over the last 2 s of a 2 s Poisson
burst at 30 x cores req/s; then per SLO a binary search between 0.3 and 1 (1.2 above 100 req/s) x
that throughput for the highest whole rate whose P99 (a 16 s Poisson test, the P99 read as the
original read it: TF-Serving's histogram over 2 s windows, the largest window) is within the SLO.
Rates tested for one SLO are reused for the others, as the original cached them.

Output: the profile schema of ``profiles/capacity_result_Feb_21.csv`` (plus ``load_time_s`` and
``memory_gb``), a row per (model, cores, SLO), appended one configuration at a time so that an
interrupted run resumes where it stopped; a variants file beside it; a JSON record of the command,
seed, versions and machine. A row whose SLO no tested rate met has capacity 0 and no P99.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from infadapter_env.serving.loadgen import LoadResult, poisson_times, send
from infadapter_env.serving.models import PUBLISHED_TOP1, ModelSpec

COLUMNS = (
    "REPLICA",
    "HARDWARE",
    "CPU",
    "MEM",
    "ARCH",
    "BATCH",
    "NUM_BATCH_THREADS",
    "MAX_ENQUEUED_BATCHES",
    "INTRA_OP_PARALLELISM",
    "INTER_OP_PARALLELISM",
    "SLA",
    "p99_latency",
    "capacity",
    "saturation_tp",
    "timestamp",
    "load_time_s",
    "memory_gb",
)


READY_TIMEOUT_S = 300.0  # how long a server may take to answer again after failed requests


class ServerFailure(RuntimeError):
    """A model server failed requests in a test twice in a row."""


@dataclass(frozen=True)
class Tests:
    """How each configuration is tested (the original profiler's values by default)."""

    slos_ms: tuple[int, ...] = (500, 750, 1000, 1500)
    p99_test_s: float = 16.0
    saturation_test_s: float = 2.0
    saturation_repeats: int = 5
    saturation_rps_per_core: float = 30.0
    seed: int = 0


@dataclass
class Configuration:
    """One (model, cores) to measure, and what it gave."""

    spec: ModelSpec
    cores: int
    rows: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the user should know about the measurement


def plan(specs: Iterable[ModelSpec], cores: Iterable[int], done: set[tuple[str, int]]) -> list[Configuration]:
    """The configurations still to measure (``done``: (ARCH, cores) already in the output)."""
    return [Configuration(s, c) for s in specs for c in cores if (s.arch, c) not in done]


def measured(path: Path) -> set[tuple[str, int]]:
    """(ARCH, cores) of the configurations an output file already holds (every SLO row written)."""
    if not path.is_file():
        return set()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or tuple(reader.fieldnames) != COLUMNS:
            raise ValueError(
                f"{path} exists but is not this profiler's output (columns {reader.fieldnames}); "
                "choose another --out or remove it"
            )
        return {(row["ARCH"], int(row["CPU"])) for row in reader}


def server_cpus(cores: int, allowed: list[int]) -> tuple[list[int], list[int]]:
    """The CPUs a server of ``cores`` cores is pinned to (the last ones allowed) and the rest (for the
    load generator and Ray's own processes; empty when the server takes them all)."""
    if cores > len(allowed):
        raise ValueError(f"{cores} cores asked for, but this process may use only CPUs {allowed}")
    return allowed[-cores:], allowed[:-cores]


def measure(
    configuration: Configuration,
    backend: object,
    tests: Tests,
    cpus: list[int],
    report: Callable[[str], None] = lambda _: None,
) -> Configuration:
    """Serve the configuration on ``cpus`` and fill its rows (one per SLO)."""
    spec, cores = configuration.spec, configuration.cores
    name = f"{spec.name}-{cores}c".replace("_", "-")
    report(f"{name}: loading")
    load_s, memory_gb = backend.deploy(name, spec, cpus)  # type: ignore[attr-defined]
    url = backend.url(name)  # type: ignore[attr-defined]
    rng = np.random.default_rng([tests.seed, cores, sum(map(ord, spec.name))])

    def run(what: str, times: np.ndarray) -> LoadResult:
        """One test; a test with failed requests is run once more after the server answers again,
        and a second failure stops the configuration (no row is written from a broken server)."""
        result = send(url, times)
        if result.failed:
            report(f"{name}: {result.failed} requests failed in the {what}; waiting for the server, then again")
            backend.wait_ready(name, time.perf_counter() + READY_TIMEOUT_S)  # type: ignore[attr-defined]
            result = send(url, times)
            if result.failed:
                raise ServerFailure(
                    f"{name}: {result.failed} of {times.size} requests failed twice in the {what} ({url}); "
                    "this configuration is not written (rerun to measure it again)"
                )
        return result

    try:
        burst = tests.saturation_rps_per_core * cores
        rates = []
        for repeat in range(tests.saturation_repeats):
            what = f"saturation test {repeat + 1}/{tests.saturation_repeats} at {burst:.0f} req/s"
            report(f"{name}: {what}")
            rates.append(
                run(what, poisson_times(rng, burst, tests.saturation_test_s)).throughput(tests.saturation_test_s)
            )
            time.sleep(1.0)  # as the original: let the queue drain
        saturation = float(round(max(rates)))
        if saturation >= 0.9 * burst:
            configuration.notes.append(
                f"{name}: the saturation burst ({burst:.0f} req/s) was answered at {saturation:.0f} req/s: it did not "
                "saturate the server, and the capacities, searched below it, may be too low; raise "
                "--saturation-rps-per-core"
            )
        p99_at: dict[int, float] = {}

        def p99(rate: int) -> float:
            if rate not in p99_at:
                report(f"{name}: P99 test at {rate} req/s")
                p99_at[rate] = run(
                    f"P99 test at {rate} req/s", poisson_times(rng, rate, tests.p99_test_s)
                ).profiler_p99_ms()
            return p99_at[rate]

        for slo in tests.slos_ms:
            capacity, p99_ms = search(p99, saturation, slo)
            configuration.rows.append(
                {
                    "REPLICA": 1,
                    "HARDWARE": "cpu",
                    "CPU": cores,
                    "MEM": f"{memory_gb:.2f}G",
                    "ARCH": spec.arch,
                    "BATCH": 1,
                    "NUM_BATCH_THREADS": cores,
                    "MAX_ENQUEUED_BATCHES": 1_000_000,
                    "INTRA_OP_PARALLELISM": 1,
                    "INTER_OP_PARALLELISM": cores,
                    "SLA": slo,
                    "p99_latency": "" if p99_ms is None else round(p99_ms, 2),
                    "capacity": capacity,
                    "saturation_tp": saturation,
                    "timestamp": datetime.now(UTC).isoformat(),
                    "load_time_s": round(load_s, 3),
                    "memory_gb": round(memory_gb, 3),
                }
            )
    finally:
        backend.remove(name)  # type: ignore[attr-defined]
    return configuration


def search(p99: Callable[[int], float], saturation: float, slo_ms: int) -> tuple[int, float | None]:
    """The original profiler's binary search: the highest whole rate between 0.3 and 1 (1.2 above
    100 req/s) x the saturation throughput whose P99 is within ``slo_ms`` (0 and None: none)."""
    high = round(1.2 * saturation) if saturation > 100 else round(saturation)
    low = int(0.3 * saturation)
    best: tuple[int, float | None] = (0, None)
    while high > low + 1:
        rate = (high + low) // 2
        value = p99(rate)
        if value <= slo_ms:
            low, best = rate, (rate, value)
        else:
            high = rate
    return best


def write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    """Append ``rows`` (the header first if the file is new)."""
    new = not path.is_file()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def write_variants(path: Path, profile: Path, specs: list[ModelSpec], accuracy: dict[str, float]) -> None:
    """The variants file of the models in ``profile`` (least accurate first): accuracy from
    ``accuracy`` (the user's table, else the published top-1), load time and memory the mean of
    the configurations measured."""
    loads: dict[str, list[float]] = {}
    memory: dict[str, list[float]] = {}
    with profile.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            loads.setdefault(row["ARCH"], []).append(float(row["load_time_s"]))
            memory.setdefault(row["ARCH"], []).append(float(row["memory_gb"]))
    present = [s for s in specs if s.arch in loads]
    present.sort(key=lambda s: accuracy[s.name])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["variant", "arch", "top1_accuracy", "load_time_s", "memory_gb"])
        for s in present:
            writer.writerow(
                [
                    s.name,
                    s.arch,
                    accuracy[s.name],
                    round(float(np.mean(loads[s.arch])), 3),
                    round(float(np.mean(memory[s.arch])), 3),
                ]
            )


def read_accuracy_table(path: Path) -> dict[str, float]:
    """A table of top-1 accuracies: CSV rows ``model,top1_accuracy`` (a header row of those names);
    every problem names the file and line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise ValueError(f"no accuracy table at {path}") from None
    out = {}
    for line, row in enumerate(rows, start=2):
        try:
            out[row["model"].strip()] = float(row["top1_accuracy"])
        except (KeyError, AttributeError, ValueError):
            raise ValueError(
                f"{path}, line {line}: expected columns model,top1_accuracy with a fraction, got {row}"
            ) from None
    return out


def accuracies(specs: list[ModelSpec], given: dict[str, float]) -> dict[str, float]:
    """Each model's top-1 accuracy: the user's, else torchvision's published one; a clear error for
    a model with neither, before anything is measured."""
    out = {}
    for s in specs:
        value = given.get(s.name, PUBLISHED_TOP1.get(s.source))
        if value is None:
            raise ValueError(
                f"model {s.name!r} has no published top-1 accuracy: give it with --accuracy {s.name}=0.75 "
                "(a fraction in 0..1)"
            )
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"accuracy of {s.name!r} must be a fraction in 0..1, got {value}")
        out[s.name] = float(value)
    return out


def record(
    path: Path, argv: list[str], tests: Tests, allowed: list[int], elapsed_s: float, measured_now: list[str]
) -> None:
    """What made the profile: per run (a resumed profile has several) the command, what it measured
    and how long it took; the tests' settings, versions and the machine."""
    from importlib.metadata import PackageNotFoundError, version

    from infadapter_env.provenance import git_commit, versions

    try:
        ray_version = version("ray")
    except PackageNotFoundError:
        ray_version = "not installed"
    runs = json.loads(path.read_text(encoding="utf-8")).get("runs", []) if path.is_file() else []
    runs.append(
        {
            "command": "infadapter profile " + " ".join(argv),
            "measured": measured_now,
            "elapsed_s": round(elapsed_s, 1),
            "finished": datetime.now(UTC).isoformat(),
            "commit": git_commit(),
        }
    )
    content = {
        "tests": asdict(tests),
        "server": f"ray-serve {ray_version}",
        "versions": versions(),
        "machine": {"cpus_allowed": allowed, "cpu_count": os.cpu_count(), "processor": platform.processor()},
        "runs": runs,
    }
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
