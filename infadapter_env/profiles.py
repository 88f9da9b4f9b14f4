"""Model variants and their capacity profiles: how many requests/s a variant serves within the SLO.

Two capacity models are offered (``CAPACITY_MODELS``):

``measured``
    The profiling table ``profiles/capacity_result_Feb_21.csv`` read as it is: the highest Poisson
    rate whose measured P99 met the SLO, for 1..20 cores of one replica. This is the default *world*
    of the environment, because it is what the hardware was measured to do.
``linear_fit``
    What the InfAdapter controller believes (paper code): a least-squares line per variant through
    the SLO-750 measurements at cores {1, 2, 4, 8, 16} (refit at the chosen SLO), times a safety
    factor of 0.8. This is the default for the planning agents, as in the paper.

A variant's capacity with ``r`` replicas of ``c`` cores is ``r * th(c)``; active replicas need at
least ``min_cores`` cores (2 in the paper code).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from infadapter_env.datafiles import data_file

SLO_CHOICES_MS = (500, 750, 1000, 1500)
CAPACITY_MODELS = ("measured", "linear_fit")
MAX_PROFILED_CORES = 20
FIT_CORES = (1, 2, 4, 8, 16)
PAPER_SAFETY_FACTOR = 0.8
PAPER_MIN_CORES = 2


@dataclass(frozen=True)
class Variant:
    """One model variant: its name, ImageNet top-1 accuracy and load time (paper code; the memory
    column of ``variants.csv`` is data no feature reads yet)."""

    name: str
    depth: int
    accuracy: float
    load_time_s: float


@lru_cache(maxsize=1)
def load_variants() -> tuple[Variant, ...]:
    """The variants table ``profiles/variants.csv``, ordered from least to most accurate."""
    path = data_file("profiles", "variants.csv")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    variants = tuple(
        Variant(
            name=row["variant"],
            depth=int(row["depth"]),
            accuracy=float(row["top1_accuracy"]),
            load_time_s=float(row["load_time_s"]),
        )
        for row in rows
    )
    return tuple(sorted(variants, key=lambda v: v.accuracy))


@lru_cache(maxsize=1)
def load_measured_capacity() -> dict[tuple[int, int], np.ndarray]:
    """Measured capacity (req/s) keyed by (depth, slo_ms): an array indexed by cores 0..20."""
    path = data_file("profiles", "capacity_result_Feb_21.csv")
    table: dict[tuple[int, int], np.ndarray] = {}
    with path.open(newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                depth, slo, cores = int(row["ARCH"]), int(row["SLA"]), int(row["CPU"])
                capacity = float(row["capacity"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {line_no}: malformed capacity row ({exc})") from exc
            column = table.setdefault((depth, slo), np.zeros(MAX_PROFILED_CORES + 1))
            column[cores] = capacity
    return table


@dataclass(frozen=True, eq=False)  # identity semantics: hashable, and cached per object
class CapacityProfile:
    """Capacity of every variant per replica, at one SLO, under one capacity model.

    ``per_replica_rps[v, c]`` is the rate variant ``v`` serves within the SLO with one replica of
    ``c`` cores (0 for ``c = 0``). Variants are ordered from least to most accurate.
    """

    variants: tuple[Variant, ...]
    slo_ms: int
    model: str
    per_replica_rps: np.ndarray
    min_cores: int = PAPER_MIN_CORES
    accuracy: np.ndarray = field(init=False, repr=False, compare=False)
    load_time_s: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accuracy", np.array([v.accuracy for v in self.variants]))
        object.__setattr__(self, "load_time_s", np.array([v.load_time_s for v in self.variants]))
        self.per_replica_rps.setflags(write=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    @property
    def max_cores_per_replica(self) -> int:
        return self.per_replica_rps.shape[1] - 1

    def th(self, variant: int, cores: int) -> float:
        """Capacity (req/s) of one replica of ``variant`` (index) with ``cores`` cores."""
        if not 0 <= cores <= self.max_cores_per_replica:
            raise ValueError(f"cores must be in 0..{self.max_cores_per_replica}, got {cores}")
        return float(self.per_replica_rps[variant, cores])

    def capacity_rps(self, replicas: np.ndarray, cores: np.ndarray) -> np.ndarray:
        """Capacity of each variant for a deployment of ``replicas`` x ``cores`` (arrays of length V)."""
        rows = np.arange(len(self.variants))
        return replicas * self.per_replica_rps[rows, cores]


def linear_fit_coefficients(slo_ms: int = 750) -> dict[str, tuple[float, float]]:
    """Slope and intercept (req/s per core, req/s) of the paper code's per-variant fit."""
    measured = load_measured_capacity()
    cores = np.array(FIT_CORES, dtype=float)
    out = {}
    for variant in load_variants():
        rates = measured[(variant.depth, slo_ms)][list(FIT_CORES)]
        slope, intercept = np.polyfit(cores, rates, 1)
        out[variant.name] = (float(slope), float(intercept))
    return out


@lru_cache(maxsize=32)
def load_profile(
    slo_ms: int = 750,
    model: str = "measured",
    min_cores: int = PAPER_MIN_CORES,
    safety_factor: float = PAPER_SAFETY_FACTOR,
) -> CapacityProfile:
    """Build the capacity profile for one SLO and capacity model.

    ``safety_factor`` applies to ``linear_fit`` only (the measured table is used as measured).
    """
    if slo_ms not in SLO_CHOICES_MS:
        raise ValueError(f"slo_ms must be one of {SLO_CHOICES_MS} (profiled SLOs), got {slo_ms!r}")
    if model not in CAPACITY_MODELS:
        raise ValueError(f"capacity model must be one of {CAPACITY_MODELS}, got {model!r}")
    if not 1 <= min_cores <= MAX_PROFILED_CORES:
        raise ValueError(f"min_cores must be in 1..{MAX_PROFILED_CORES}, got {min_cores!r}")
    if not 0.0 < safety_factor <= 1.0:
        raise ValueError(f"safety_factor must be in (0, 1], got {safety_factor!r}")
    variants = load_variants()
    table = np.zeros((len(variants), MAX_PROFILED_CORES + 1))
    if model == "measured":
        measured = load_measured_capacity()
        for row, variant in enumerate(variants):
            table[row] = measured[(variant.depth, slo_ms)]
    else:
        cores = np.arange(MAX_PROFILED_CORES + 1, dtype=float)
        for row, (slope, intercept) in enumerate(linear_fit_coefficients(slo_ms).values()):
            table[row] = np.maximum(safety_factor * (slope * cores + intercept), 0.0)
        table[:, 0] = 0.0
    return CapacityProfile(variants, slo_ms, model, table, min_cores)
