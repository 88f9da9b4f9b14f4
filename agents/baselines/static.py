"""Static provisioning: one deployment for the whole episode.

- ``static-over``: the deployment InfAdapter's solver (planning profile, the env's weights) picks
  for ``rate_rps`` = 300 req/s, the paper slice's peak (274 req/s) plus 10 %. With the defaults:
  ResNet18 at 13 cores + ResNet50 at 7 cores, the whole budget of 20 cores. Shows the cost of
  provisioning for the peak.
- ``static-under``: the solver's pick for 100 req/s, about the paper slice's mean (96.6 req/s).
  Shows the violations of provisioning for the average.

Parameter: ``rate_rps``; ``cores`` (a tuple of 5) overrides the solver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from infadapter_agents.base import Agent
from infadapter_agents.planning.solver import PlanningModel, solve
from infadapter_env.world.profiles import UnsupportedWorld

OVER_RATE_RPS = 300.0
UNDER_RATE_RPS = 100.0


class StaticAgent(Agent):
    seed_independent = True  # one deployment, chosen at reset from the settings

    def __init__(
        self, rate_rps: float = OVER_RATE_RPS, cores: tuple[int, ...] | None = None, name: str = "static"
    ) -> None:
        self.rate_rps, self.fixed, self.name = rate_rps, cores, name

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        if self.fixed is not None:
            if len(self.fixed) != self.settings.n_variants:
                raise UnsupportedWorld(
                    f"a static deployment of {len(self.fixed)} variants; this world has {self.settings.n_variants}"
                )
            self.cores = tuple(self.fixed)
        else:
            model = PlanningModel(self.settings.planning_profile(), self.settings.budget_cores)
            self.cores = solve(model, self.rate_rps, (0,) * self.settings.n_variants, self.settings.weights).cores

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        return self.settings.action([1 if c else 0 for c in self.cores], self.cores)

    def decision_info(self) -> dict[str, Any]:
        return {"cores": list(self.cores)}
