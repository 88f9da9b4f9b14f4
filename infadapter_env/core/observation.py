"""The layout of an InfAdapter-v0 observation, defined once: ``fields(n_variants, observe_weights)``
fixes the order, the sizes, the documented bounds and units; the positions (``ObservationLayout``),
the bounds vector (``upper_bounds``) and the table in the env docstring (``markdown_table``) are
derived from it.

The layout depends on the number of variants of the world (5 in the shipped one) and on the
``observe_weights`` setting, which appends the objective's weights (``ALPHA``, ``BETA``, ``GAMMA``,
this episode's values) after every other field, so the default layout is unchanged. Agents read
observations through the names of their env's layout (``settings.layout.CORES``, or
``env.unwrapped.layout``), never through positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SHIPPED_VARIANTS = 5
HISTORY_MINUTES = 10


@dataclass(frozen=True)
class Field:
    """One quantity of the observation: ``size`` entries (1, or one per variant or minute)."""

    name: str
    size: int
    meaning: str
    bound: str  # the upper bound as the docs state it (P, C, R, L: see the env docstring)
    unit: str


WEIGHT_FIELDS = ("ALPHA", "BETA", "GAMMA")
# One entry per minute or per variant: a slice, even of one entry (a world of one variant).
VECTOR_FIELDS = frozenset(
    {"MINUTE_PEAKS", "CORES", "REPLICAS", "LOADING_LEFT", "UTILISATION", "BACKLOG", "P99_OVER_SLO"}
)  # with observe_weights=True, after every other field


def fields(n_variants: int, observe_weights: bool = False, observe_budget: bool = False) -> tuple[Field, ...]:
    """The observation's fields, in order, for a world of ``n_variants`` variants; with
    ``observe_weights`` the objective's weights follow the others, then with ``observe_budget``
    (an env with a ``budget_trace``) the cores available in the coming interval."""
    v = n_variants
    budget = (
        Field(
            "AVAILABLE_CORES",
            1,
            "cores available in the coming interval / budget_cores (budget_trace only)",
            "1",
            "fraction",
        ),
    )
    weights = (
        Field("ALPHA", 1, "objective weight alpha (observe_weights=True only)", "max(1, alpha)", "weight"),
        Field(
            "BETA",
            1,
            "objective weight beta of this episode (observe_weights=True only; drawn from betas if given)",
            "max(1, beta, betas)",
            "weight",
        ),
        Field("GAMMA", 1, "objective weight gamma (observe_weights=True only)", "max(1, gamma)", "weight"),
    )
    return (
        (
            Field(
                "MINUTE_PEAKS",
                HISTORY_MINUTES,
                "peak arrival rate of each of the last 10 minutes, oldest first",
                "P",
                "req/s",
            ),
            Field("MEAN_RATE", 1, "mean arrival rate of the last interval", "P", "req/s"),
            Field("PEAK_RATE", 1, "peak arrival rate of the last interval", "P", "req/s"),
            Field("CORES", v, "target cores per replica, per variant", "C", "cores"),
            Field("REPLICAS", v, "target replicas, per variant", "R", "replicas"),
            Field("LOADING_LEFT", v, "load time left before the target serves, per variant", "L", "s"),
            Field(
                "UTILISATION",
                v,
                "busy fraction of the servers while they served last interval (completed / mu-seconds)",
                "1",
                "fraction",
            ),
            Field("BACKLOG", v, "requests waiting in the queues, per variant", "queue_factor x R x max th", "requests"),
            Field("VIOLATION_RATE", 1, "SLO-violation fraction of last interval's arrivals", "1", "fraction"),
            Field("DROP_RATE", 1, "dropped fraction of last interval's arrivals", "1", "fraction"),
            Field("RESOURCE_COST", 1, "RC: target cores / budget_cores", "1", "fraction"),
            Field("PROGRESS", 1, "episode progress", "1", "fraction"),
            Field(
                "P99_OVER_SLO",
                v,
                "last interval's P99 latency / SLO, per variant (0: served nothing)",
                "20 (clipped)",
                "fraction",
            ),
        )
        + (weights if observe_weights else ())
        + (budget if observe_budget else ())
    )


class ObservationLayout:
    """Positions of the fields in the observation vector of a world of ``n_variants`` variants:
    an index (``int``) for a one-entry field, a ``slice`` for the others. ``ALPHA``, ``BETA`` and
    ``GAMMA`` exist with ``observe_weights=True`` only."""

    MINUTE_PEAKS: slice
    MEAN_RATE: int
    PEAK_RATE: int
    CORES: slice
    REPLICAS: slice
    LOADING_LEFT: slice
    UTILISATION: slice
    BACKLOG: slice
    VIOLATION_RATE: int
    DROP_RATE: int
    RESOURCE_COST: int
    PROGRESS: int
    P99_OVER_SLO: slice
    ALPHA: int
    BETA: int
    GAMMA: int
    AVAILABLE_CORES: int

    def __init__(self, n_variants: int, observe_weights: bool = False, observe_budget: bool = False) -> None:
        if isinstance(n_variants, bool) or not isinstance(n_variants, int) or n_variants < 1:
            raise ValueError(f"n_variants must be a positive integer, got {n_variants!r}")
        self.n_variants = n_variants
        self.observe_weights = bool(observe_weights)
        self.observe_budget = bool(observe_budget)
        self.fields = fields(n_variants, self.observe_weights, self.observe_budget)
        self.positions: dict[str, int | slice] = {}
        start = 0
        for field in self.fields:
            position = slice(start, start + field.size) if field.name in VECTOR_FIELDS else start
            self.positions[field.name] = position
            setattr(self, field.name, position)
            start += field.size
        self.size = start

    def __repr__(self) -> str:
        return (
            f"ObservationLayout(n_variants={self.n_variants}, size={self.size}, "
            + ", ".join(f"{name}={position}" for name, position in self.positions.items())
            + ")"
        )

    def upper_bounds(self, values: Mapping[str, float | np.ndarray]) -> np.ndarray:
        """The observation's upper bounds (float32) from one value (or one per entry) per field name."""
        missing = [f.name for f in self.fields if f.name not in values]
        if missing:
            raise ValueError(f"no upper bound given for observation field(s) {missing}")
        high = np.zeros(self.size)
        for field in self.fields:
            high[self.positions[field.name]] = values[field.name]
        return high.astype(np.float32)

    def markdown_table(self) -> str:
        """The observation table of the env docstring."""
        lines = [
            "| index | meaning | min | max | unit |",
            "|-------|---------|-----|-----|------|",
        ]
        for field in self.fields:
            position = self.positions[field.name]
            index = str(position) if isinstance(position, int) else f"{position.start}-{position.stop - 1}"
            lines.append(f"| {index} | {field.meaning} | 0 | {field.bound} | {field.unit} |")
        return "\n".join(lines)


@lru_cache(maxsize=32)
def observation_layout(
    n_variants: int = SHIPPED_VARIANTS, observe_weights: bool = False, observe_budget: bool = False
) -> ObservationLayout:
    """The layout for a world of ``n_variants`` variants, with or without the objective's weights
    and the available cores (one object per combination)."""
    return ObservationLayout(n_variants, observe_weights, observe_budget)
