"""The world the environment simulates: model variants, their capacity profile (how many requests/s
a variant serves within the SLO) and the servers calibrated to it.

A *world* (``World``, from ``load_world(profile, variants)``) is read from a profile folder:

- a capacity profile in the schema of ``profiles/capacity_result_Feb_21.csv`` (columns ``ARCH``,
  ``CPU``, ``SLA``, ``capacity``; the calibration also reads ``p99_latency`` and ``saturation_tp``):
  one row per variant, profiled SLO and core count 1..C;
- ``variants.csv``: ``variant, arch, top1_accuracy, load_time_s[, memory_gb]``, where ``arch``
  is the value of the variant's rows in the profile's ``ARCH`` column. Any number of variants; a
  subset of a profile's architectures picks those;
- ``service_model.csv`` and ``latency_quantiles.npz``, made from the two by ``infadapter calibrate``.

The shipped world (``profiles/``) is the paper's: ResNet18..152 on 1..20 cores at SLOs of 500,
750, 1000 and 1500 ms. The SLO must be a profiled one (capacity is not interpolated between SLOs:
the measured capacities are binary-search results whose noise an interpolation would hide).

Two capacity models are offered (``CAPACITY_MODELS``):

``measured``
    The profile read as it is: the highest Poisson rate whose measured P99 met the SLO, per core
    count of one replica. This is the default for the environment, because it is what the
    hardware was measured to do.
``linear_fit``
    What the InfAdapter controller believes (paper code): a least-squares line per variant through
    the measurements at cores {1, 2, 4, 8, 16} (those profiled) at the chosen SLO, times a safety
    factor of 0.8. This is the default for the planning agents, as in the paper.

A variant's capacity with ``r`` replicas of ``c`` cores is ``r * th(c)``; active replicas need at
least ``min_cores`` cores (2 in the paper code).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from infadapter_env.world.service_model import (
    LATENCY_TABLE_FILE,
    SERVICE_MODEL_FILE,
    LatencyTable,
    ServiceModel,
    read_latency_table,
    read_service_model,
)
from infadapter_env.world.shipped_data import NotTextError, data_file, decode_text

SHIPPED_PROFILE = "capacity_result_Feb_21.csv"
CAPACITY_MODELS = ("measured", "linear_fit")
FIT_CORES = (1, 2, 4, 8, 16)
PAPER_SAFETY_FACTOR = 0.8
PAPER_MIN_CORES = 2
PROFILE_COLUMNS = ("ARCH", "CPU", "SLA", "capacity")  # the env reads these; calibration also p99_latency, saturation_tp
VARIANT_COLUMNS = ("variant", "arch", "top1_accuracy", "load_time_s")


class UnsupportedWorld(ValueError):
    """An agent that cannot act in the env's world (a variant it names is not there, a policy trained
    on other variants); the leaderboard skips such a contender unless it was asked for by name."""


@dataclass(frozen=True)
class Variant:
    """One model variant: its name, the ``ARCH`` value its rows carry in the capacity profile, its
    top-1 accuracy and load time (paper code), and its memory (data no feature reads yet)."""

    name: str
    arch: str
    accuracy: float
    load_time_s: float
    memory_gb: float | None = None


def read_variants(path: Path) -> tuple[Variant, ...]:
    """A variants table (columns ``variant, arch, top1_accuracy, load_time_s[, memory_gb]``),
    ordered from least to most accurate; every problem names the file and line."""
    rows = _read_csv(path, VARIANT_COLUMNS, "variants")
    variants = []
    for line_no, row in rows:
        name, arch = row["variant"].strip(), row["arch"].strip()
        if not name or not arch:
            raise ValueError(f"{path}, line {line_no}: empty variant name or arch")
        accuracy = _number(path, line_no, row, "top1_accuracy", 0.0, 1.0)
        load_time = _number(path, line_no, row, "load_time_s", 0.0, 3600.0)
        memory = _number(path, line_no, row, "memory_gb", 0.0, 1e6) if row.get("memory_gb") else None
        variants.append(Variant(name, arch, accuracy, load_time, memory))
    if not variants:
        raise ValueError(f"{path}: no variants (a header and at least one row are needed)")
    for attribute in ("name", "arch"):
        seen = [getattr(v, attribute) for v in variants]
        repeated = sorted({x for x in seen if seen.count(x) > 1})
        if repeated:
            raise ValueError(f"{path}: variant {attribute} {repeated} given more than once")
    return tuple(sorted(variants, key=lambda v: v.accuracy))


@dataclass(frozen=True)
class MeasuredTable:
    """A capacity profile as measured: ``capacity[v, s, c]`` (req/s) of variant ``v`` (in the
    variants' order) at SLO ``slo_choices_ms[s]`` with ``c`` cores (``c = 0``: 0)."""

    path: Path
    slo_choices_ms: tuple[int, ...]
    capacity: np.ndarray  # (V, S, C+1)

    @property
    def max_cores(self) -> int:
        return self.capacity.shape[2] - 1

    def at(self, variant: int, slo_ms: int) -> np.ndarray:
        return self.capacity[variant, self.slo_choices_ms.index(slo_ms)]


def read_capacity_table(path: Path, variants: tuple[Variant, ...]) -> MeasuredTable:
    """A capacity profile in the schema of ``profiles/capacity_result_Feb_21.csv`` for ``variants``.

    Rows of an ``ARCH`` no variant names are ignored (so a variants file can pick a subset); every
    variant needs exactly one row per profiled SLO and per core count from 1 to the profile's
    largest. Every problem names the file and line, or the missing (variant, SLO, cores).
    """
    rows = _read_csv(path, PROFILE_COLUMNS, "capacity profile")
    index = {v.arch: k for k, v in enumerate(variants)}
    found: dict[tuple[int, int, int], tuple[int, float]] = {}
    for line_no, row in rows:
        arch = row["ARCH"].strip()
        if arch not in index:
            continue
        cores = int(_number(path, line_no, row, "CPU", 1, 4096, integer=True))
        slo = int(_number(path, line_no, row, "SLA", 1, 10**6, integer=True))
        capacity = _number(path, line_no, row, "capacity", 0.0, 1e9)
        key = (index[arch], slo, cores)
        if key in found:
            raise ValueError(
                f"{path}, line {line_no}: ARCH {arch} at SLA {slo} with {cores} CPU repeats line {found[key][0]}"
            )
        found[key] = (line_no, capacity)
    absent = sorted(v.arch for k, v in enumerate(variants) if not any(key[0] == k for key in found))
    if absent:
        raise ValueError(
            f"{path}: no rows for variant ARCH {absent} (the variants file names them; the profile's ARCH "
            f"values are {sorted({row['ARCH'].strip() for _, row in rows})})"
        )
    slos = tuple(sorted({slo for _, slo, _ in found}))
    max_cores = max(cores for _, _, cores in found)
    table = np.zeros((len(variants), len(slos), max_cores + 1))
    missing = []
    for v, variant in enumerate(variants):
        for s, slo in enumerate(slos):
            for cores in range(1, max_cores + 1):
                hit = found.get((v, slo, cores))
                if hit is None:
                    missing.append(f"{variant.arch}/SLA {slo}/{cores} CPU")
                else:
                    table[v, s, cores] = hit[1]
    if missing:
        raise ValueError(
            f"{path}: every variant needs a row for every profiled SLA {list(slos)} and every CPU count "
            f"1..{max_cores}; missing {len(missing)}: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"
        )
    table.setflags(write=False)
    return MeasuredTable(path, slos, table)


def _read_csv(path: Path, required: tuple[str, ...], what: str) -> list[tuple[int, dict[str, str]]]:
    try:
        text = decode_text(Path(path).read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {path} not found") from None
    except NotTextError as exc:
        raise ValueError(
            f"{path}, line {exc.line}: not a UTF-8 or UTF-16 text {what} file ({exc.reason} at byte {exc.byte})"
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in required if name not in header]
    if missing:
        raise ValueError(f"{path}: {what} needs the column(s) {missing}; its header is {header}")
    reader.fieldnames = header
    rows = []
    for line_no, row in enumerate(reader, start=2):
        if None in row or any(value is None for value in row.values()):
            raise ValueError(f"{path}, line {line_no}: {len(header)} fields expected")
        rows.append((line_no, row))
    return rows


def _number(
    path: Path, line_no: int, row: dict[str, str], column: str, low: float, high: float, integer: bool = False
) -> float:
    text = row[column].strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high or (integer and value != int(value)):
        kind = "an integer" if integer else "a number"
        raise ValueError(
            f"{path}, line {line_no}, field {column}: {kind} in [{low:g}, {high:g}] expected, got {text!r}"
        )
    return value


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
    world: Any = field(default=None, repr=False)  # the World it was built from (None: the shipped one)
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


def linear_fit_coefficients(slo_ms: int = 750, world: World | None = None) -> dict[str, tuple[float, float]]:
    """Slope and intercept (req/s per core, req/s) of the paper code's per-variant fit, through the
    measurements at ``FIT_CORES`` (those the profile has)."""
    world = world or shipped_world()
    fit_cores = [c for c in FIT_CORES if c <= world.max_cores]
    if len(fit_cores) < 2:
        raise ValueError(
            f"capacity model 'linear_fit' fits a line through cores {FIT_CORES}; profile {world.profile_path} "
            f"has only cores 1..{world.max_cores}: use capacity_model='measured'"
        )
    cores = np.array(fit_cores, dtype=float)
    out = {}
    for k, variant in enumerate(world.variants):
        rates = world.measured.at(k, slo_ms)[fit_cores]
        slope, intercept = np.polyfit(cores, rates, 1)
        out[variant.name] = (float(slope), float(intercept))
    return out


@lru_cache(maxsize=32)
def load_profile(
    slo_ms: int = 750,
    model: str = "measured",
    min_cores: int = PAPER_MIN_CORES,
    safety_factor: float = PAPER_SAFETY_FACTOR,
    world: World | None = None,
) -> CapacityProfile:
    """Build the capacity profile of ``world`` (default: the shipped one) for one SLO and capacity model.

    ``safety_factor`` applies to ``linear_fit`` only (the measured table is used as measured).
    """
    world = world or shipped_world()
    if slo_ms not in world.slo_choices_ms:
        raise ValueError(
            f"slo_ms must be one of {world.slo_choices_ms} (the SLOs profiled in {world.profile_path.name}; "
            f"between them capacity is not interpolated), got {slo_ms!r}"
        )
    if model not in CAPACITY_MODELS:
        raise ValueError(f"capacity model must be one of {CAPACITY_MODELS}, got {model!r}")
    if not 1 <= min_cores <= world.max_cores:
        raise ValueError(f"min_cores must be in 1..{world.max_cores}, got {min_cores!r}")
    if not 0.0 < safety_factor <= 1.0:
        raise ValueError(f"safety_factor must be in (0, 1], got {safety_factor!r}")
    if model == "measured":
        table = np.array([world.measured.at(k, slo_ms) for k in range(world.n_variants)])
    else:
        cores = np.arange(world.max_cores + 1, dtype=float)
        table = np.zeros((world.n_variants, world.max_cores + 1))
        for row, (slope, intercept) in enumerate(linear_fit_coefficients(slo_ms, world).values()):
            table[row] = np.maximum(safety_factor * (slope * cores + intercept), 0.0)
        table[:, 0] = 0.0
    return CapacityProfile(world.variants, slo_ms, model, table, min_cores, world)


@dataclass(frozen=True, eq=False)  # identity semantics: one object per loaded world (``load_world`` caches)
class World:
    """What the environment simulates: the variants, their measured capacity profile, and the
    servers calibrated to it (``infadapter calibrate``), read from one profile folder.

    A profile folder holds the capacity profile (any file name), ``variants.csv`` and the
    calibration's ``service_model.csv`` and ``latency_quantiles.npz``; the shipped one is ``profiles/``.
    """

    profile_path: Path
    variants_path: Path
    variants: tuple[Variant, ...]
    measured: MeasuredTable
    server_speed: float = 1.0  # a multiplier on every server's service rate (1.0: as calibrated)

    @property
    def n_variants(self) -> int:
        return len(self.variants)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    @property
    def slo_choices_ms(self) -> tuple[int, ...]:
        return self.measured.slo_choices_ms

    @property
    def max_cores(self) -> int:
        """The largest core count per replica the profile measured."""
        return self.measured.max_cores

    @property
    def is_shipped(self) -> bool:
        return self.profile_path == _shipped_paths()[0] and self.variants_path == _shipped_paths()[1]

    def at_speed(self, server_speed: float) -> World:
        """This world with every server ``server_speed`` times as fast as calibrated (cached)."""
        return load_world(self.profile_path, self.variants_path, server_speed)

    @cached_property
    def service_model(self) -> ServiceModel:
        """The calibrated servers (``service_model.csv`` beside the profile), at ``server_speed``."""
        return read_service_model(self._calibration_file(SERVICE_MODEL_FILE), self).at_speed(self.server_speed)

    @cached_property
    def latency_table(self) -> LatencyTable:
        """The steady-state latency quantiles (``latency_quantiles.npz`` beside the profile), at ``server_speed``."""
        return read_latency_table(self._calibration_file(LATENCY_TABLE_FILE), self).at_speed(self.server_speed)

    def _calibration_file(self, name: str) -> Path:
        path = self.profile_path.parent / name
        if not path.is_file():
            raise FileNotFoundError(
                f"no {name} beside profile {self.profile_path}: the simulators need the servers calibrated to "
                f"the profile; make them with: infadapter calibrate --profile {self.profile_path} "
                f"--variants {self.variants_path}"
            )
        return path


def _shipped_paths() -> tuple[Path, Path]:
    return data_file("profiles", SHIPPED_PROFILE), data_file("profiles", "variants.csv")


def shipped_world() -> World:
    """The world of the InfAdapter paper: ResNet18..152 on the profile of 2023-02-21."""
    return load_world()


def load_world(
    profile: str | Path | None = None, variants: str | Path | None = None, server_speed: float = 1.0
) -> World:
    """The world of a capacity profile and a variants file, its servers ``server_speed`` times as
    fast as calibrated.

    ``profile=None`` is the shipped profile. ``variants=None`` is the ``variants.csv`` beside the
    profile if there is one, else the shipped variants. Loaded once per (files, modification times, speed).
    """
    profile_path = Path(profile).expanduser().resolve() if profile is not None else _shipped_paths()[0]
    if variants is not None:
        variants_path = Path(variants).expanduser().resolve()
    elif (profile_path.parent / "variants.csv").is_file():
        variants_path = profile_path.parent / "variants.csv"
    else:
        variants_path = _shipped_paths()[1]
    for path, what in ((profile_path, "profile"), (variants_path, "variants")):
        if not path.is_file():
            raise FileNotFoundError(f"{what} file {path} not found")
    mtimes = profile_path.stat().st_mtime_ns, variants_path.stat().st_mtime_ns
    return _load_world(profile_path, variants_path, *mtimes, float(server_speed))


@lru_cache(maxsize=16)
def _load_world(
    profile_path: Path, variants_path: Path, _profile_mtime: int, _variants_mtime: int, server_speed: float
) -> World:
    if server_speed != 1.0:  # the same files read once: the world at speed 1, its servers scaled
        base = _load_world(profile_path, variants_path, _profile_mtime, _variants_mtime, 1.0)
        return World(profile_path, variants_path, base.variants, base.measured, server_speed)
    variants = read_variants(variants_path)
    return World(profile_path, variants_path, variants, read_capacity_table(profile_path, variants))
