"""The service model of a model server: how long each request takes, and the latency it sees under load.

Per (variant, cores) a server is ``workers`` parallel workers (TF-Serving's ``num_batch_threads =
cores``, batch 1, one intra-op thread; ``auto_tuner/experiments/capacity_experiment.py``) taking
requests from one FIFO queue; a request's service time is Gamma-distributed with mean
``mean_service_ms`` and coefficient of variation ``service_cv`` (``cv = 0``: constant). The
parameters are calibrated to the measured profile by ``scripts/calibrate_service.py`` and ship in
``profiles/service_model.csv``; ``profiles/calibration_report.md`` gives the error for every row.

``profiles/latency_quantiles.npz`` holds, per (variant, cores), the steady-state quantiles of the
latency (wait + service) of that server under Poisson load at utilisations ``rho`` from 0.02 to 0.99,
simulated from the same parameters. The fast simulator reads latencies from them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from infadapter_env.datafiles import data_file
from infadapter_env.profiles import MAX_PROFILED_CORES, load_variants

SERVICE_MODEL_FILE = "service_model.csv"
LATENCY_TABLE_FILE = "latency_quantiles.npz"


@dataclass(frozen=True)
class ServiceModel:
    """Calibrated servers of every variant at 1..20 cores: arrays indexed [variant, cores] (cores 0 unused).

    ``service_rps``: the throughput of a saturated server, workers / mean service time.
    """

    workers: np.ndarray  # (V, C+1) int
    mean_service_s: np.ndarray  # (V, C+1)
    service_cv: np.ndarray  # (V, C+1)
    service_rps: np.ndarray  # (V, C+1); 0 at cores 0

    def draw_service_s(self, variant: int, cores: int, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` service times (s) of one request each on a server of ``variant`` with ``cores``."""
        mean = float(self.mean_service_s[variant, cores])
        cv = float(self.service_cv[variant, cores])
        if cv <= 0:
            return np.full(size, mean)
        shape = 1.0 / (cv * cv)
        return rng.standard_gamma(shape, size) * (mean / shape)


@lru_cache(maxsize=1)
def load_service_model() -> ServiceModel:
    """The calibrated service model shipped in ``profiles/service_model.csv``."""
    path = data_file("profiles", SERVICE_MODEL_FILE)
    index = {variant.depth: row for row, variant in enumerate(load_variants())}
    shape = (len(index), MAX_PROFILED_CORES + 1)
    workers = np.zeros(shape, dtype=np.int64)
    mean = np.zeros(shape)
    cv = np.zeros(shape)
    with path.open(newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                v, c = index[int(row["depth"])], int(row["cores"])
                workers[v, c] = int(row["workers"])
                mean[v, c] = float(row["mean_service_ms"]) / 1000.0
                cv[v, c] = float(row["service_cv"])
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise ValueError(f"{path}, line {line_no}: malformed service-model row ({exc!r})") from exc
    missing = [(v, c) for v in range(shape[0]) for c in range(1, shape[1]) if workers[v, c] < 1 or mean[v, c] <= 0]
    if missing:
        raise ValueError(f"{path}: no service model for (variant index, cores) {missing[:5]}")
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


@lru_cache(maxsize=1)
def load_latency_table() -> LatencyTable:
    """The steady-state latency quantiles shipped in ``profiles/latency_quantiles.npz``."""
    path = data_file("profiles", LATENCY_TABLE_FILE)
    with np.load(path) as data:
        table = LatencyTable(data["rho"], data["levels"], data["quantile_ms"].astype(np.float64) / 1000.0)
    for array in (table.rho, table.levels, table.quantile_s):
        array.setflags(write=False)
    return table
