"""MArk-style predictive horizontal scaling on one variant (Zhang et al., "MArk: Exploiting Cloud
Services for Cost-Effective, SLO-Aware Machine Learning Inference Serving", USENIX ATC 2019).

MArk forecasts the load at least one instance launch time ahead and provisions the cheapest number
of instances that keep the SLO for the forecast. Here: the forecast is the next minute's peak
(``forecaster``, LSTM by default, which covers the interval plus the load time), plus ``margin``
(10 %), and the replica count is the smallest whose capacity (the planning profile, paper
linear fit x 0.8) covers it.

Parameters (defaults): ``variant`` resnet50, ``cores_per_replica`` 4, ``forecaster`` lstm,
``margin`` 0.1. Needs ``action_mode="replicas"``.

Simplifications: one instance type (fixed replica size) instead of MArk's choice among cloud
instance types; no serverless burst handling and no batching.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from infadapter_agents.base import Agent
from infadapter_agents.baselines.autoscaling import replica_scaler_variant
from infadapter_agents.forecast.forecasters import make_forecaster, real_minute_peaks
from infadapter_env.core.observation import HISTORY_MINUTES


class MArkAgent(Agent):
    uses_weights = False  # its rule reads usage or rates, never the objective
    name = "mark"

    def __init__(
        self, variant: str | int = "resnet50", cores_per_replica: int = 4, forecaster: str = "lstm", margin: float = 0.1
    ) -> None:
        self.variant_spec = variant
        self.cores_per_replica, self.margin = cores_per_replica, margin
        self.forecaster = make_forecaster(forecaster)

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.variant = replica_scaler_variant(self.name, self.variant_spec, self.settings)
        self.forecaster.reset(info)
        self.history_minutes = int(info.get("history_minutes", HISTORY_MINUTES))
        profile = self.settings.planning_profile()
        self.replica_rps = profile.th(self.variant, self.cores_per_replica)
        self.max_replicas = min(self.settings.budget_cores // self.cores_per_replica, self.settings.max_replicas)
        self.replicas, self.forecast_rps = 1, 0.0

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        peaks = real_minute_peaks(observation, info, self.history_minutes)
        self.forecast_rps = self.forecaster.predict(peaks, info)
        needed = self.forecast_rps * (1 + self.margin) / self.replica_rps
        self.replicas = min(max(math.ceil(needed - 1e-9), 1), self.max_replicas)
        replicas = self.settings.one_variant(self.variant, self.replicas)
        return self.settings.action(replicas, self.settings.one_variant(self.variant, self.cores_per_replica))

    def decision_info(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "forecast_rps": self.forecast_rps}
