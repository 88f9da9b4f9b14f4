"""The layout of an InfAdapter-v0 observation, defined once: ``FIELDS`` fixes the order, the sizes,
the documented bounds and units; the index constants, the bounds vector (``upper_bounds``) and the
table in the env docstring (``markdown_table``) are derived from it.

Agents read observations through these names (``observation[CORES]``), never through positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

N_VARIANTS = 5
HISTORY_MINUTES = 10


@dataclass(frozen=True)
class Field:
    """One quantity of the observation: ``size`` entries (1, or one per variant or minute)."""

    name: str
    size: int
    meaning: str
    bound: str  # the upper bound as the docs state it (P, C, R: see the env docstring)
    unit: str


FIELDS = (
    Field(
        "MINUTE_PEAKS", HISTORY_MINUTES, "peak arrival rate of each of the last 10 minutes, oldest first", "P", "req/s"
    ),
    Field("MEAN_RATE", 1, "mean arrival rate of the last interval", "P", "req/s"),
    Field("PEAK_RATE", 1, "peak arrival rate of the last interval", "P", "req/s"),
    Field("CORES", N_VARIANTS, "target cores per replica, per variant", "C", "cores"),
    Field("REPLICAS", N_VARIANTS, "target replicas, per variant", "R", "replicas"),
    Field("LOADING_LEFT", N_VARIANTS, "load time left before the target serves, per variant", "8.52", "s"),
    Field(
        "UTILISATION",
        N_VARIANTS,
        "busy fraction of the servers while they served last interval (completed / mu-seconds)",
        "1",
        "fraction",
    ),
    Field(
        "BACKLOG", N_VARIANTS, "requests waiting in the queues, per variant", "queue_factor x R x max th", "requests"
    ),
    Field("VIOLATION_RATE", 1, "SLO-violation fraction of last interval's arrivals", "1", "fraction"),
    Field("DROP_RATE", 1, "dropped fraction of last interval's arrivals", "1", "fraction"),
    Field("RESOURCE_COST", 1, "RC: target cores / budget_cores", "1", "fraction"),
    Field("PROGRESS", 1, "episode progress", "1", "fraction"),
    Field(
        "P99_OVER_SLO",
        N_VARIANTS,
        "last interval's P99 latency / SLO, per variant (0: served nothing)",
        "20 (clipped)",
        "fraction",
    ),
)


def _positions() -> tuple[dict[str, int | slice], int]:
    positions: dict[str, int | slice] = {}
    start = 0
    for field in FIELDS:
        positions[field.name] = start if field.size == 1 else slice(start, start + field.size)
        start += field.size
    return positions, start


_POSITIONS, SIZE = _positions()


def _slice(name: str) -> slice:
    position = _POSITIONS[name]
    assert isinstance(position, slice), name
    return position


def _index(name: str) -> int:
    position = _POSITIONS[name]
    assert isinstance(position, int), name
    return position


MINUTE_PEAKS = _slice("MINUTE_PEAKS")
MEAN_RATE = _index("MEAN_RATE")
PEAK_RATE = _index("PEAK_RATE")
CORES = _slice("CORES")
REPLICAS = _slice("REPLICAS")
LOADING_LEFT = _slice("LOADING_LEFT")
UTILISATION = _slice("UTILISATION")
BACKLOG = _slice("BACKLOG")
VIOLATION_RATE = _index("VIOLATION_RATE")
DROP_RATE = _index("DROP_RATE")
RESOURCE_COST = _index("RESOURCE_COST")
PROGRESS = _index("PROGRESS")
P99_OVER_SLO = _slice("P99_OVER_SLO")


def upper_bounds(values: Mapping[str, float]) -> np.ndarray:
    """The observation's upper bounds (float32) from one value per field name (every field needed)."""
    missing = [f.name for f in FIELDS if f.name not in values]
    if missing:
        raise ValueError(f"no upper bound given for observation field(s) {missing}")
    high = np.zeros(SIZE)
    for field in FIELDS:
        high[_POSITIONS[field.name]] = values[field.name]
    return high.astype(np.float32)


def markdown_table() -> str:
    """The observation table of the env docstring."""
    lines = [
        "| index | meaning | min | max | unit |",
        "|-------|---------|-----|-----|------|",
    ]
    for field in FIELDS:
        position = _POSITIONS[field.name]
        index = str(position) if isinstance(position, int) else f"{position.start}-{position.stop - 1}"
        lines.append(f"| {index} | {field.meaning} | 0 | {field.bound} | {field.unit} |")
    return "\n".join(lines)
