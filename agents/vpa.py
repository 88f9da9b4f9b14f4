"""Kubernetes Vertical Pod Autoscaler (VPA) on one variant: ``vpa-18`` ... ``vpa-152``.

Source: the VPA recommender of kubernetes/autoscaler (``vertical-pod-autoscaler/pkg/recommender``):
CPU usage samples go into a histogram with exponentially growing buckets (first bucket 0.01
cores, ratio 1.05) whose sample weights decay with a half-life (24 h by default); the target is
the 90th percentile, the lower and upper bounds the 50th and 95th, each with a 15 % safety
margin. The paper (InfAdapter, EuroMLSys 2023) uses VPA as its main baseline.

Parameters (defaults): ``variant`` (the model it scales), ``update_mode``:

- ``"target"`` (the paper's setting): apply the target; scale up at once, scale down only after
  ``downscale_patience`` (4) consecutive lower targets;
- ``"bounds"`` (the VPA updater): change the size only when it falls outside [lower, upper],
  then to the target;

``initial_cores`` 8, ``half_life_s`` 86400, ``margin`` 0.15, cores clamped to [2, budget].

Simplifications: usage is derived from utilisation (``agents.usage``), one sample per decision
interval instead of VPA's per-minute sampling, no memory recommendation, no per-sample weighting by
the CPU request, and a resize restarts the variant's pod with the env's load time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import Agent
from agents.usage import cpu_usage_cores, one_variant, variant_index

UPDATE_MODES = ("target", "bounds")


class DecayingHistogram:
    """VPA's histogram: exponential buckets, sample weights that double every ``half_life_s``."""

    def __init__(
        self, first_bucket: float = 0.01, ratio: float = 1.05, max_value: float = 1000.0, half_life_s: float = 86400.0
    ):
        self.first_bucket, self.ratio, self.half_life_s = first_bucket, ratio, half_life_s
        self.n_buckets = self._bucket(max_value) + 1
        self.weights = np.zeros(self.n_buckets)

    def _bucket(self, value: float) -> int:
        if value < self.first_bucket:
            return 0
        return math.floor(math.log(1 + value * (self.ratio - 1) / self.first_bucket) / math.log(self.ratio))

    def _bucket_end(self, index: int) -> float:
        return self.first_bucket * (self.ratio ** (index + 1) - 1) / (self.ratio - 1)

    def add(self, value: float, time_s: float) -> None:
        index = min(self._bucket(value), self.n_buckets - 1)
        self.weights[index] += 2.0 ** (time_s / self.half_life_s)

    def percentile(self, q: float) -> float:
        total = self.weights.sum()
        if total <= 0:
            return 0.0
        index = int(np.searchsorted(np.cumsum(self.weights), q * total))
        return self._bucket_end(min(index, self.n_buckets - 1))

    @property
    def empty(self) -> bool:
        return not self.weights.any()


class VPAAgent(Agent):
    def __init__(
        self,
        variant: str | int = "resnet50",
        update_mode: str = "target",
        initial_cores: int = 8,
        half_life_s: float = 86400.0,
        margin: float = 0.15,
        downscale_patience: int = 4,
    ) -> None:
        if update_mode not in UPDATE_MODES:
            raise ValueError(f"unknown VPA update mode {update_mode!r}; valid: {', '.join(UPDATE_MODES)}")
        self.variant = variant_index(variant)
        self.update_mode, self.initial_cores, self.half_life_s = update_mode, initial_cores, half_life_s
        self.margin, self.downscale_patience = margin, downscale_patience
        self.name = f"vpa-{variant}"

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.histogram = DecayingHistogram(half_life_s=self.half_life_s)
        self.cores = self._clamp(self.initial_cores)
        self.lower_streak = 0
        self.recommendation: dict[str, int] = {}

    def _clamp(self, cores: float) -> int:
        return int(min(max(math.ceil(cores - 1e-9), self.settings.min_cores), self.settings.max_cores))

    def recommend(self) -> dict[str, int]:
        """Target, lower and upper bound in whole cores (percentile x (1 + margin), clamped)."""
        return {
            key: self._clamp(self.histogram.percentile(q) * (1 + self.margin))
            for key, q in (("lower", 0.5), ("target", 0.9), ("upper", 0.95))
        }

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        time_s = float(info.get("time_s", 0))
        if "step" in info:  # a step info: last interval's usage is in the observation
            self.histogram.add(cpu_usage_cores(observation, self.variant), time_s)
        if not self.histogram.empty:
            rec = self.recommendation = self.recommend()
            if self.update_mode == "bounds":
                if not rec["lower"] <= self.cores <= rec["upper"]:
                    self.cores = rec["target"]
            elif rec["target"] >= self.cores:
                self.cores, self.lower_streak = rec["target"], 0
            else:
                self.lower_streak += 1
                if self.lower_streak >= self.downscale_patience:
                    self.cores, self.lower_streak = rec["target"], 0
        cores = one_variant(self.variant, self.cores)
        return self.settings.action([1 if c else 0 for c in cores], cores)

    def decision_info(self) -> dict[str, Any]:
        return {"cores": self.cores, **{f"vpa_{k}": v for k, v in self.recommendation.items()}}
