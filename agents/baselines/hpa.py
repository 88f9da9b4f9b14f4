"""Kubernetes Horizontal Pod Autoscaler (HPA) on one variant: replicas of a fixed size.

Source: the HPA algorithm of the Kubernetes documentation ("Horizontal Pod Autoscaling",
algorithm details): ``desired = ceil(current x utilisation / target)``, no change while
``|utilisation / target - 1| <= tolerance`` (0.1), and scale-down stabilisation: the replica
count applied is the highest desired count of the last ``downscale_window_s`` (300 s).

Parameters (defaults): ``variant`` resnet50, ``cores_per_replica`` 4, ``target_utilisation``
0.7, ``tolerance`` 0.1, ``downscale_window_s`` 300, ``initial_replicas`` 1, replicas between 1 and
budget // cores_per_replica. Needs ``action_mode="replicas"``.

Simplifications: utilisation is derived from the served share of capacity (``infadapter_agents.baselines.autoscaling``),
averaged over the decision interval (Kubernetes uses 15 s metric windows); no scale-up rate limits.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from infadapter_agents.base import Agent
from infadapter_agents.baselines.autoscaling import replica_scaler_variant


class HPAAgent(Agent):
    uses_weights = False  # its rule reads usage or rates, never the objective
    name = "hpa"

    def __init__(
        self,
        variant: str | int = "resnet50",
        cores_per_replica: int = 4,
        target_utilisation: float = 0.7,
        tolerance: float = 0.1,
        downscale_window_s: int = 300,
        initial_replicas: int = 1,
    ) -> None:
        if not 0 < target_utilisation <= 1:
            raise ValueError(f"target_utilisation must be in (0, 1], got {target_utilisation!r}")
        self.variant_spec = variant
        self.cores_per_replica, self.target, self.tolerance = cores_per_replica, target_utilisation, tolerance
        self.downscale_window_s, self.initial_replicas = downscale_window_s, initial_replicas

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.variant = replica_scaler_variant(self.name, self.variant_spec, self.settings)
        if not self.settings.min_cores <= self.cores_per_replica <= self.settings.max_cores:
            raise ValueError(f"cores_per_replica must be in {self.settings.min_cores}..{self.settings.max_cores}")
        self.max_replicas = min(self.settings.budget_cores // self.cores_per_replica, self.settings.max_replicas)
        self.replicas = min(self.initial_replicas, self.max_replicas)
        window = max(self.downscale_window_s // self.settings.interval_s, 1)
        self.recent: deque[int] = deque(maxlen=window)
        self.desired = self.replicas

    def desired_replicas(self, utilisation: float) -> int:
        ratio = utilisation / self.target
        if abs(ratio - 1) <= self.tolerance:
            return self.replicas
        return min(max(math.ceil(self.replicas * ratio - 1e-9), 1), self.max_replicas)

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        if "step" in info:
            utilisation = float(observation[self.settings.layout.UTILISATION][self.variant])
            self.desired = self.desired_replicas(utilisation)
            self.recent.append(self.desired)
            # Scale up at once; scale down only to the highest recommendation of the window.
            self.replicas = self.desired if self.desired > self.replicas else max(self.recent)
        replicas = self.settings.one_variant(self.variant, self.replicas)
        return self.settings.action(replicas, self.settings.one_variant(self.variant, self.cores_per_replica))

    def decision_info(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "desired_replicas": self.desired}
