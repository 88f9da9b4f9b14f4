"""The one interface every policy implements, and what a policy may know about the environment.

An agent sees only what the environment publishes: the reset ``info`` (its ``settings``), the
observation, and each step's ``info``. It never reads the environment's private state.

    agent.reset(reset_info)
    action = agent.act(observation, info)   # info: the reset info first, then each step's info
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import numpy as np

from infadapter_env.core.actions import ActionDecoder, enumerate_deployments
from infadapter_env.core.objective import Weights
from infadapter_env.core.observation import ObservationLayout
from infadapter_env.core.settings import EnvSettings
from infadapter_env.world.profiles import CapacityProfile, World, load_profile, shipped_world


@dataclass(frozen=True)
class PlanningView:
    """The environment settings an agent plans with, read from ``reset_info["settings"]`` and built by
    the env's own ``EnvSettings`` (so every derived limit follows the env's rules)."""

    budget_cores: int
    slo_ms: int
    min_cores: int
    interval_s: int
    action_mode: str
    max_replicas: int
    max_cores: int
    weights: Weights
    raw: Mapping[str, Any]
    over_budget: str = "reject"
    world: World = field(default_factory=shipped_world)  # the env's world (variants, profile)
    env_settings: EnvSettings | None = None  # the env's own settings object (None: the defaults)

    @property
    def n_variants(self) -> int:
        return len(self.variants)

    @property
    def variants(self) -> tuple[str, ...]:
        """The variant names, in the env's order (least to most accurate)."""
        return self.world.names

    @property
    def layout(self) -> ObservationLayout:
        """The positions of the env's observation fields (the env's own rule, ``EnvSettings.layout``)."""
        return (self.env_settings or EnvSettings()).layout()

    def one_variant(self, variant: int, value: int) -> list[int]:
        """``value`` for ``variant``, 0 for every other variant."""
        return [value if v == variant else 0 for v in range(self.n_variants)]

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> PlanningView:
        try:
            s = info["settings"]
        except KeyError:
            raise ValueError(
                "agent.reset() needs the info dict returned by env.reset() (no 'settings' in it)"
            ) from None
        # The trace is recorded by name and not needed to plan; the rest is the env's config.
        known = {f.name for f in fields(EnvSettings) if f.init} - {"trace"}
        config = EnvSettings.from_kwargs(**{k: v for k, v in s.items() if k in known})
        return cls(
            config.budget_cores,
            config.slo_ms,
            config.min_cores,
            config.interval_s,
            config.action_mode,
            config.replica_limit,
            config.max_cores_per_replica,
            config.weights,
            s,
            config.over_budget,
            config.world,
            config,
        )

    def planning_profile(self, capacity_model: str = "linear_fit") -> CapacityProfile:
        return load_profile(self.slo_ms, capacity_model, self.min_cores, world=self.world)

    def encoder(self) -> ActionDecoder:
        return _encoder(
            self.action_mode,
            self.n_variants,
            self.min_cores,
            self.max_cores,
            self.max_replicas,
            self.budget_cores,
            self.over_budget,
        )

    def available_cores(self, observation: np.ndarray) -> int | None:
        """The cores available in the coming interval (an env with a ``budget_trace`` carries them in
        the observation as a share of the budget), or None without one."""
        layout = self.layout
        if not layout.observe_budget:
            return None
        return round(float(observation[layout.AVAILABLE_CORES]) * self.budget_cores)

    def action(self, replicas: Any, cores: Any) -> Any:
        """The action of the env's action mode for a deployment (replicas, cores per variant)."""
        return self.encoder().encode(np.asarray(replicas), np.asarray(cores))


@lru_cache(maxsize=8)
def _encoder(
    mode: str, n_variants: int, min_cores: int, max_cores: int, max_replicas: int, budget: int, over_budget: str
) -> ActionDecoder:
    """The env's own action rules (decoding included), for the env's settings."""
    table = enumerate_deployments(n_variants, min_cores, max_cores, budget) if mode == "deployment" else None
    return ActionDecoder(mode, n_variants, min_cores, max_cores, max_replicas, budget, table, over_budget)


class Agent(abc.ABC):
    """Base class: ``reset`` reads the settings; subclasses implement ``act``."""

    name: str = "agent"
    settings: PlanningView
    # Whether the agent's actions depend on the objective's weights (alpha, beta, gamma). An agent
    # that declares False acts the same at every beta, so a leaderboard plays it once per
    # (scenario, seed) and scores that episode at every beta; a test holds the built-ins to it.
    uses_weights: bool = True
    # Whether the agent's decisions read only what no arrival seed changes (the trace's counts, its
    # own deployment, the time), never simulated outcomes (latency, drops, usage). A leaderboard
    # then plays it at one seed and replays its decisions at the others; a test holds the
    # built-ins that declare it to it.
    seed_independent: bool = False

    def reset(self, info: Mapping[str, Any]) -> None:
        self.settings = PlanningView.from_info(info)

    @abc.abstractmethod
    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        """The next action, in the env's action space."""

    def decision_info(self) -> dict[str, Any]:
        """What the agent decided last and why (forecast, fallback flags, ...); empty by default."""
        return {}
