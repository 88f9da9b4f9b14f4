"""Typed, validated settings of the environment (the keyword arguments of ``gym.make``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from infadapter_env.core.actions import ACTION_MODES, OVER_BUDGET_MODES
from infadapter_env.core.objective import PAPER_ALPHA, PAPER_BETA, PAPER_GAMMA, Weights
from infadapter_env.core.observation import ObservationLayout, observation_layout
from infadapter_env.sim.cluster import DISPATCHERS, REPLICA_ROUTINGS
from infadapter_env.world.arrivals import ARRIVAL_PROCESSES, WITHIN_THEIR_SECOND
from infadapter_env.world.profiles import CAPACITY_MODELS, PAPER_MIN_CORES, World, load_world
from infadapter_env.world.shipped_data import NotTextError, decode_text
from infadapter_env.world.traces import (
    Trace,
    from_array,
    load_trace_file,
    scenario,
    scenario_names,
    trace_digest,
    trace_file_digest,
)

SIMULATORS = ("fast", "request")
BACKENDS = ("sim", "live")  # live: real model servers (infadapter_env.serving.live)
MAX_SERVER_SPEED = 4.0  # server_speed: a multiplier on every server's service rate, in (0, 4]
# Named budget traces (``budget_trace="<name>"``): runs of (decision intervals, share of budget_cores
# available), the last run holding to the episode's end. Shares, not cores, so a pattern fits any budget.
BUDGET_PATTERNS: dict[str, tuple[tuple[int, float], ...]] = {
    # A co-located tenant takes 40 % of the cores for 5 minutes (intervals 10-19), then a node
    # failure leaves half of them for 5 minutes (20-29); the rest of the episode has them all.
    "tenant-then-failure": ((10, 1.0), (10, 0.6), (10, 0.5), (1, 1.0)),
}


def budget_pattern(name: str, budget_cores: int) -> tuple[int, ...]:
    """The cores available per decision interval of the named pattern (``BUDGET_PATTERNS``)."""
    if name not in BUDGET_PATTERNS:
        raise ValueError(f"unknown budget pattern {name!r}; named patterns: {', '.join(BUDGET_PATTERNS)}")
    return tuple(int(share * budget_cores) for length, share in BUDGET_PATTERNS[name] for _ in range(length))


REWARD_MODES = ("scalar", "vector")  # vector: (AA_effective, -RC, -LC), MO-Gymnasium style


@dataclass(frozen=True)
class EnvSettings:
    """Every setting of ``InfAdapter-v0``; see the environment docstring for their meaning."""

    scenario: str = "paper"
    trace: Any = None
    trace_column: str | None = None
    trace_resolution_s: int = 1
    episode_length_s: int | None = None
    window_start_s: int | None = None
    skip_gaps: bool = True
    rate_multiplier: float = 1.0
    interval_s: int = 30
    slo_ms: int = 750
    budget_cores: int = 20
    budget_trace: Any = None
    alpha: float = PAPER_ALPHA
    beta: float = PAPER_BETA
    gamma: float = PAPER_GAMMA
    betas: tuple[float, ...] | None = None
    observe_weights: bool = False
    dispatcher: str = "accuracy_first"
    replica_routing: str = "random"
    capacity_model: str = "measured"
    action_mode: str = "cores"
    queue_factor: float = 1.25
    server_speed: float = 1.0
    min_cores: int = PAPER_MIN_CORES
    max_replicas: int | None = None
    initial_cores: tuple[int, ...] | None = None
    simulator: str = "fast"
    arrivals: str = "poisson"
    over_budget: str = "reject"
    reward_mode: str = "scalar"
    profile: Any = None
    variants: Any = None
    backend: str = "sim"
    ray_address: str | None = None
    weights: Weights = field(init=False, repr=False, compare=False)
    world: World = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("profile", "variants"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str | Path):
                raise ValueError(f"{name} must be a path to a CSV file or None, got {value!r}")
        _check_number("server_speed", self.server_speed, low=0.0, low_open=True)
        if not self.server_speed <= MAX_SERVER_SPEED:
            raise ValueError(f"server_speed must be in (0, {MAX_SERVER_SPEED:g}], got {self.server_speed!r}")
        object.__setattr__(self, "world", load_world(self.profile, self.variants, self.server_speed))
        _check_choice("scenario", self.scenario, scenario_names())
        _check_choice("dispatcher", self.dispatcher, DISPATCHERS)
        _check_choice("replica_routing", self.replica_routing, REPLICA_ROUTINGS)
        _check_choice("capacity_model", self.capacity_model, CAPACITY_MODELS)
        _check_choice("action_mode", self.action_mode, ACTION_MODES)
        _check_choice("slo_ms", self.slo_ms, self.world.slo_choices_ms)
        _check_choice("simulator", self.simulator, SIMULATORS)
        _check_choice("arrivals", self.arrivals, ARRIVAL_PROCESSES)
        if self.arrivals != "poisson" and self.simulator == "fast" and self.backend == "sim":
            raise ValueError(
                f"arrivals={self.arrivals!r} shapes the request-level simulator and live mode; the fast simulator "
                "assumes Poisson arrivals within each second: use simulator='request', or arrivals='poisson'"
            )
        _check_choice("over_budget", self.over_budget, OVER_BUDGET_MODES)
        _check_choice("reward_mode", self.reward_mode, REWARD_MODES)
        _check_choice("backend", self.backend, BACKENDS)
        if self.backend == "live" and self.server_speed != 1.0:
            raise ValueError(
                f"backend='live' serves with the real servers' own speed: server_speed must be 1.0, "
                f"got {self.server_speed!r}"
            )
        if self.backend == "live" and self.replica_routing != "random":
            raise ValueError(
                "backend='live' routes among a variant's replicas with Ray Serve's own router: replica_routing "
                f"must be 'random' there, got {self.replica_routing!r}"
            )
        if self.backend == "live" and self.dispatcher != "accuracy_first":
            raise ValueError(
                f"backend='live' runs the accuracy_first dispatcher only, got dispatcher={self.dispatcher!r}"
            )
        if self.ray_address is not None and not isinstance(self.ray_address, str):
            raise ValueError(f"ray_address must be a Ray cluster address (a string) or None, got {self.ray_address!r}")
        _check_int("interval_s", self.interval_s, 1, 3600)
        _check_int("trace_resolution_s", self.trace_resolution_s, 1, 86400)
        if self.trace_resolution_s != 1 and (self.trace is None or isinstance(self.trace, Trace)):
            raise ValueError(
                "trace_resolution_s applies to a trace given as a file or an array (counts per bin); "
                f"a scenario or a Trace is per second already, got trace_resolution_s={self.trace_resolution_s}"
            )
        _check_int("budget_cores", self.budget_cores, 1, 1000)
        _check_int("min_cores", self.min_cores, 1, self.world.max_cores)
        if self.episode_length_s is not None:
            _check_int("episode_length_s", self.episode_length_s, self.interval_s, 10**8)
        if self.window_start_s is not None:
            _check_int("window_start_s", self.window_start_s, 0, 10**8)
            if self.episode_length_s is None:
                raise ValueError("window_start_s needs episode_length_s (the length of the fixed window)")
        if self.max_replicas is not None:
            _check_int("max_replicas", self.max_replicas, 1, 1000)
        if not isinstance(self.skip_gaps, bool):
            raise ValueError(f"skip_gaps must be True or False, got {self.skip_gaps!r}")
        if not isinstance(self.observe_weights, bool):
            raise ValueError(f"observe_weights must be True or False, got {self.observe_weights!r}")
        if self.betas is not None:
            self._check_betas()
        if self.budget_trace is not None:
            self._check_budget_trace()
        _check_number("rate_multiplier", self.rate_multiplier, low=0.0, low_open=True)
        _check_number("queue_factor", self.queue_factor, low=0.0)
        if self.initial_cores is not None:
            self._check_initial_cores()
        if self.min_cores > self.budget_cores:
            raise ValueError(f"min_cores ({self.min_cores}) cannot exceed budget_cores ({self.budget_cores})")
        object.__setattr__(self, "weights", Weights(self.alpha, self.beta, self.gamma))

    def _check_betas(self) -> None:
        betas = self.betas
        ok = isinstance(betas, tuple | list) and len(betas) > 0
        ok = ok and all(
            isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) and b >= 0
            for b in betas  # type: ignore[union-attr]
        )
        if not ok:
            raise ValueError(
                f"betas must be a non-empty list of finite numbers >= 0 (each episode's beta is drawn from "
                f"them at reset), or None; got {betas!r}"
            )
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))  # type: ignore[union-attr]

    def _check_budget_trace(self) -> None:
        trace = self.budget_trace
        if isinstance(trace, str) and trace in BUDGET_PATTERNS:
            trace = budget_pattern(trace, self.budget_cores)
        elif isinstance(trace, str | Path):
            try:
                lines = decode_text(Path(trace).read_bytes()).split()
            except (OSError, NotTextError) as exc:
                raise ValueError(
                    f"budget_trace file {trace}: cannot read it as text ({exc}); "
                    f"named patterns: {', '.join(BUDGET_PATTERNS)}"
                ) from None
            values: list[Any] = []
            for number, text in enumerate(lines, start=1):
                try:
                    values.append(int(text))
                except ValueError:
                    raise ValueError(
                        f"budget_trace file {trace}, value {number}: {text!r} is not a whole number of cores"
                    ) from None
            trace = values
        ok = isinstance(trace, tuple | list | np.ndarray) and len(trace) > 0
        bad = (
            []
            if not ok
            else [
                (k, c)
                for k, c in enumerate(np.asarray(trace, dtype=object).tolist())
                if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= self.budget_cores
            ]
        )
        if not ok or bad:
            where = f"; entry {bad[0][0]} is {bad[0][1]!r}" if bad else ""
            raise ValueError(
                "budget_trace must be a non-empty list (or a text file) of the cores available in each decision "
                f"interval, whole numbers in 0..budget_cores={self.budget_cores}{where}"
            )
        object.__setattr__(self, "budget_trace", tuple(int(c) for c in trace))

    def layout(self) -> ObservationLayout:
        """The observation layout of these settings (variants, observed weights, observed budget)."""
        return observation_layout(self.world.n_variants, self.observe_weights, self.budget_trace is not None)

    def available_cores(self, steps: np.ndarray) -> np.ndarray | None:
        """The cores available in decision interval ``steps`` (0-based; the trace's last value holds
        after its end), or None without a ``budget_trace``."""
        if self.budget_trace is None:
            return None
        trace = np.asarray(self.budget_trace, dtype=np.int64)
        return trace[np.minimum(np.asarray(steps, dtype=np.int64), trace.size - 1)]

    @property
    def weight_bounds(self) -> tuple[float, float, float]:
        """Upper bounds of the observed weights (``observe_weights``): max(1, the weight), beta's
        over every beta an episode may draw."""
        return (
            max(1.0, self.alpha),
            max(1.0, self.beta, *(self.betas or ())),
            max(1.0, self.gamma),
        )

    def _check_initial_cores(self) -> None:
        cores = self.initial_cores
        limit = self.max_cores_per_replica
        n_variants = self.world.n_variants
        ok = isinstance(cores, tuple | list) and len(cores) == n_variants
        ok = ok and all(
            isinstance(c, int) and not isinstance(c, bool) and (c == 0 or self.min_cores <= c <= limit)
            for c in cores  # type: ignore[union-attr]
        )
        if not ok or sum(cores) > self.budget_cores:  # type: ignore[arg-type]
            raise ValueError(
                f"initial_cores must give {n_variants} core counts ({', '.join(self.world.names)}), "
                f"each 0 or {self.min_cores}..{limit}, "
                f"summing to at most budget_cores={self.budget_cores}; got {cores!r}"
            )
        object.__setattr__(self, "initial_cores", tuple(cores))  # type: ignore[arg-type]

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EnvSettings:
        """Build from keyword arguments, naming any unknown key and the valid ones."""
        valid = sorted(f.name for f in fields(cls) if f.init)
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise ValueError(f"unknown InfAdapter-v0 setting(s) {unknown}; valid settings: {', '.join(valid)}")
        return cls(**kwargs)

    @property
    def max_cores_per_replica(self) -> int:
        return min(self.budget_cores, self.world.max_cores)

    @property
    def seed_moves_counts(self) -> bool:
        """Whether the arrival seed changes the per-second counts the env observes (and so what an
        agent reading only counts decides): on the request level with arrivals that can leave
        their second, or on real servers."""
        if self.backend != "sim":
            return True
        return self.simulator == "request" and self.arrivals not in WITHIN_THEIR_SECOND

    @property
    def replica_limit(self) -> int:
        return self.max_replicas if self.max_replicas is not None else max(self.budget_cores // self.min_cores, 1)

    def source_trace(self) -> Trace:
        """The trace episodes are drawn from (before the rate multiplier and windowing)."""
        if self.trace is None:
            return scenario(self.scenario)
        if isinstance(self.trace, Trace):
            return self.trace
        if isinstance(self.trace, str | Path):
            return load_trace_file(self.trace, self.trace_column, self.trace_resolution_s)
        return from_array(self.trace, resolution_s=self.trace_resolution_s)

    @cached_property
    def trace_sha256(self) -> str | None:
        """The content digest of a trace of one's own (``trace_digest``; None for a named scenario)."""
        if self.trace is None:
            return None
        if isinstance(self.trace, str | Path):
            return trace_file_digest(self.trace, self.trace_column, self.trace_resolution_s)
        return trace_digest(self.source_trace())

    def recorded(self) -> dict[str, Any]:
        """The settings as plain values, for result rows. A trace of one's own is recorded with its
        content digest (``trace_sha256``), a file by its absolute path, an array as ``"array"`` (the
        leaderboard keeps it in a file named by the digest), a ``Trace`` by its name."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        if isinstance(self.trace, Trace):
            out["trace"] = self.trace.name
        elif self.trace is not None and not isinstance(self.trace, str | Path):
            out["trace"] = "array"
        elif self.trace is not None:
            out["trace"] = str(Path(self.trace).expanduser().resolve())
        if self.trace is not None:
            out["trace_sha256"] = self.trace_sha256
        if self.initial_cores is not None:
            out["initial_cores"] = list(self.initial_cores)
        if self.betas is not None:
            out["betas"] = list(self.betas)
        for name in ("profile", "variants"):  # recorded as absolute paths, so a replay elsewhere finds them
            if out[name] is not None:
                out[name] = str(Path(out[name]).expanduser().resolve())
        return out


def _check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed or isinstance(value, bool):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def _check_number(name: str, value: object, low: float, low_open: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value <= low if low_open else value < low):  # type: ignore[operator]
        ok = False
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
