"""Autopilot-style vertical scaling on one variant (Rzadca et al., "Autopilot: Workload
Autoscaling at Google", EuroSys 2020).

Autopilot's moving-window recommenders set a job's CPU limit from recent usage: the peak (or a
high percentile) of the usage samples in a sliding window, plus a safety margin. Here: one usage
sample per decision interval (``infadapter_agents.baselines.autoscaling``); the recommendation is
the ``percentile`` (100 = peak) of the last ``window_s`` (300 s) of samples, times ``1 + margin`` (0.15), in whole cores
clamped to [2, budget]; applied every interval (Autopilot resizes in place).

Parameters (defaults): ``variant`` resnet50, ``window_s`` 300, ``percentile`` 100, ``margin``
0.15, ``initial_cores`` 8.

Simplifications: one recommender (Autopilot chooses among an ensemble of windowed recommenders
with a cost model), no decay weights within the window, no memory/OOM handling.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from infadapter_agents.base import Agent
from infadapter_agents.baselines.autoscaling import cpu_usage_cores, variant_index


class AutopilotAgent(Agent):
    uses_weights = False  # its rule reads usage or rates, never the objective
    name = "autopilot"

    def __init__(
        self,
        variant: str | int = "resnet50",
        window_s: int = 300,
        percentile: float = 100.0,
        margin: float = 0.15,
        initial_cores: int = 8,
    ) -> None:
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
        self.variant_spec = variant
        self.window_s, self.percentile, self.margin, self.initial_cores = window_s, percentile, margin, initial_cores

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.variant = variant_index(self.variant_spec, self.settings.world)
        self.samples: deque[float] = deque(maxlen=max(self.window_s // self.settings.interval_s, 1))
        self.cores = self._clamp(self.initial_cores)

    def _clamp(self, cores: float) -> int:
        return int(min(max(math.ceil(cores - 1e-9), self.settings.min_cores), self.settings.max_cores))

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        if "step" in info:
            self.samples.append(cpu_usage_cores(observation, self.variant, self.settings.layout))
            level = float(np.percentile(np.array(self.samples), self.percentile))
            self.cores = self._clamp(level * (1 + self.margin))
        cores = self.settings.one_variant(self.variant, self.cores)
        return self.settings.action([1 if c else 0 for c in cores], cores)

    def decision_info(self) -> dict[str, Any]:
        return {"cores": self.cores}
