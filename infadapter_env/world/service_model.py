"""The service model of a model server: how long each request takes, and the latency it sees under load.

Per (variant, cores) a server is ``workers`` parallel workers (TF-Serving's ``num_batch_threads =
cores``, batch 1, one intra-op thread; ``auto_tuner/experiments/capacity_experiment.py``) taking
requests from one FIFO queue; a request's service time is Gamma-distributed with mean
``mean_service_ms`` and coefficient of variation ``service_cv`` (``cv = 0``: constant). The
parameters are calibrated to the measured profile by ``sim.calibration`` and ship in
``profiles/service_model.csv``; ``profiles/calibration_report.md`` gives the error for every row.

``profiles/latency_quantiles.npz`` holds, per (variant, cores), the steady-state quantiles of the
latency (wait + service) of that server under Poisson load at utilisations ``rho`` from 0.02 to 0.99,
simulated from the same parameters. The fast simulator reads latencies from them.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from infadapter_env.world.profiles import World

SERVICE_MODEL_FILE = "service_model.csv"
LATENCY_TABLE_FILE = "latency_quantiles.npz"


@dataclass(frozen=True)
class ServiceModel:
    """Calibrated servers of every variant at 1..C cores: arrays indexed [variant, cores] (cores 0 unused).

    ``service_rps``: the throughput of a saturated server, workers / mean service time.
    """

    workers: np.ndarray  # (V, C+1) int
    mean_service_s: np.ndarray  # (V, C+1)
    service_cv: np.ndarray  # (V, C+1)
    service_rps: np.ndarray  # (V, C+1); 0 at cores 0

    def at_speed(self, speed: float) -> ServiceModel:
        """The same servers ``speed`` times as fast: every service time divided by ``speed``."""
        if speed == 1.0:
            return self
        arrays = (self.workers, self.mean_service_s / speed, self.service_cv, self.service_rps * speed)
        for array in arrays[1:]:
            array.setflags(write=False)
        return ServiceModel(*arrays)

    def draw_service_s(self, variant: int, cores: int, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` service times (s) of one request each on a server of ``variant`` with ``cores``."""
        mean = float(self.mean_service_s[variant, cores])
        cv = float(self.service_cv[variant, cores])
        if cv <= 0:
            return np.full(size, mean)
        shape = 1.0 / (cv * cv)
        return rng.standard_gamma(shape, size) * (mean / shape)


def read_service_model(path: Path, world: World) -> ServiceModel:
    """The calibrated servers of ``world``'s variants from ``path`` (a ``service_model.csv``, rows
    keyed by variant name and cores); a missing (variant, cores) or a malformed row is named."""
    index = {name: row for row, name in enumerate(world.names)}
    shape = (world.n_variants, world.max_cores + 1)
    workers = np.zeros(shape, dtype=np.int64)
    mean = np.zeros(shape)
    cv = np.zeros(shape)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                v, c = index.get(row["variant"]), int(row["cores"])
                if v is None or not 1 <= c <= world.max_cores:
                    continue  # a variant or core count this world does not use
                workers[v, c] = int(row["workers"])
                mean[v, c] = float(row["mean_service_ms"]) / 1000.0
                cv[v, c] = float(row["service_cv"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {line_no}: malformed service-model row ({exc!r})") from exc
    missing = [
        f"{world.names[v]}/{c} cores"
        for v in range(shape[0])
        for c in range(1, shape[1])
        if workers[v, c] < 1 or mean[v, c] <= 0
    ]
    if missing:
        raise ValueError(
            f"{path}: no service model for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; "
            f"recalibrate: infadapter calibrate --profile {world.profile_path} --variants {world.variants_path}"
        )
    rate = np.divide(workers, mean, out=np.zeros(shape), where=mean > 0)
    for array in (workers, mean, cv, rate):
        array.setflags(write=False)
    return ServiceModel(workers, mean, cv, rate)


@dataclass(frozen=True)
class LatencyTable:
    """Steady-state latency quantiles: ``quantile_s[variant, cores, rho_index, level_index]`` (s)."""

    rho: np.ndarray  # (R,) utilisation grid
    levels: np.ndarray  # (L,) cumulative probabilities
    quantile_s: np.ndarray  # (V, C+1, R, L)

    def at_speed(self, speed: float) -> LatencyTable:
        """The table of servers ``speed`` times as fast: at the same utilisation every latency
        (waiting and service) is the same multiple of the service time, so divided by ``speed``."""
        if speed == 1.0:
            return self
        scaled = self.quantile_s / speed
        scaled.setflags(write=False)
        return LatencyTable(self.rho, self.levels, scaled)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), which calibration outputs record of their profile."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_latency_table(path: Path, world: World) -> LatencyTable:
    """The latency quantiles of ``world``'s variants from ``path`` (a ``latency_quantiles.npz`` with
    ``rho``, ``levels``, ``quantile_ms[variant, cores, rho, level]``, the ``variants`` names of its
    rows and the ``profile_sha256`` of the profile it was calibrated to, which must match)."""
    with np.load(path) as data:
        names = [str(n) for n in data["variants"]]
        recorded = str(data["profile_sha256"])
        rho, levels, quantile_ms = data["rho"], data["levels"], data["quantile_ms"]
    if recorded != file_sha256(world.profile_path):
        raise ValueError(
            f"{path} was calibrated to another profile than {world.profile_path} (its SHA-256 differs); "
            f"recalibrate: infadapter calibrate --profile {world.profile_path} --variants {world.variants_path}"
        )
    absent = [name for name in world.names if name not in names]
    if absent or quantile_ms.shape[1] < world.max_cores + 1:
        raise ValueError(
            f"{path} has no latency table for variant(s) {absent} or fewer than {world.max_cores} cores; recalibrate: "
            f"infadapter calibrate --profile {world.profile_path} --variants {world.variants_path}"
        )
    rows = [names.index(name) for name in world.names]
    table = LatencyTable(rho, levels, quantile_ms[rows, : world.max_cores + 1].astype(np.float64) / 1000.0)
    for array in (table.rho, table.levels, table.quantile_s):
        array.setflags(write=False)
    return table
