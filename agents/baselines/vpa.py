"""Kubernetes Vertical Pod Autoscaler (VPA) on one variant: ``vpa-18`` ... ``vpa-152``.

Source: the VPA recommender of kubernetes/autoscaler (``vertical-pod-autoscaler/pkg/recommender``):
CPU usage samples go into a histogram with exponentially growing buckets (first bucket 0.01
cores, ratio 1.05) whose sample weights decay with a half-life (24 h by default); the target is
the 90th percentile, the lower and upper bounds the 50th and 95th, each with a 15 % safety
margin. The paper (InfAdapter, EuroMLSys 2023) uses VPA as its main baseline.

The recommender starts sampling when the VPA object is created (``created_s``) and takes one
sample per ``sample_period_s`` (60 s, VPA's recommender loop): the CPU usage of the last decision
interval, weighted by the CPU request (the allocated cores), as VPA weights its samples.

What a sample reads (``usage``; the sources do not settle it, and it decides the cost claim):

- ``"throttled"`` (default): the servers' busy fraction x the allocation
  (``infadapter_agents.baselines.autoscaling``); like a CPU-throttled pod, usage never exceeds the allocation;
- ``"busy"``: a serving process under load uses its whole allocation (TF-Serving with
  ``inter_op_parallelism`` = cores spins its threads): the allocation whenever the variant served.

Applying the target (``update_mode``), from ``first_decision_s`` on, every decision interval:

- ``"target"`` (the paper code, ``auto_tuner/adapter/main.py`` with ``VPA_TYPE="P"``): the target
  rounded up to whole cores and clamped to [min_cores, budget] (the VPA object's 2-20 bounds) is
  applied at once when it is higher; a lower-or-equal target is skipped up to
  ``downscale_patience`` (4) consecutive times and applied the next time; applying resets the count.
  No recommendation yet counts as an equal target;
- ``"bounds"`` (the VPA updater, ``vertical-pod-autoscaler/pkg/updater``): change the size only
  when it falls outside [lower, upper], then to the target. The bounds are the recommender's:
  scaled by its confidence in the history, ``c`` = min(days between the first and the last sample,
  samples / 1,440), the lower bound by (1 + 0.001 / c)^-2 (0 with no history: never raise a pod
  on a fresh history) and the upper bound by (1 + 1 / c) (unbounded with no history: an episode's
  20 minutes of samples give c = 0.014 and an upper bound 70 times the 95th percentile, so the
  updater does not shrink a pod within an episode). The updater evicts a pod only where its
  controller has at least ``min_replicas`` live replicas (the updater's ``--min-replicas``, 2 by
  default; VPA's ``updatePolicy.minReplicas`` overrides it): VPA here sizes one pod, so with the
  default the updater never acts and the pod keeps its initial size; ``min_replicas=1`` lets it.

Parameters (defaults): ``variant``, ``update_mode`` ``"target"``, ``initial_cores`` 8,
``half_life_s`` 86400, ``margin`` 0.15, ``downscale_patience`` 4, ``usage`` ``"throttled"``,
``created_s`` 0, ``sample_period_s`` 60, ``first_decision_s`` 0, ``min_replicas`` 2 (``"bounds"`` only).

Simplifications: usage is derived from the observation's busy fraction of the last interval; no
memory recommendation; recommendations in whole cores (VPA's are in millicores, with a 25 m
floor); a resize restarts the variant's pod with the env's load time (a rolling update: the old
size serves until the new one is ready); in ``"bounds"`` mode, the updater's eviction rate limits
(``--eviction-tolerance``, the eviction rate), its rule that refreshes a pod inside the bounds
after 12 h when the target differs by 10 % or more (no episode lasts 12 h), and the admission
controller capping the request to the container's limit are not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from infadapter_agents.base import Agent
from infadapter_agents.baselines.autoscaling import cpu_usage_cores, variant_index
from infadapter_agents.forecast.forecasters import Stabiliser

UPDATE_MODES = ("target", "bounds")
USAGE_SIGNALS = ("throttled", "busy")


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

    def add(self, value: float, time_s: float, weight: float = 1.0) -> None:
        index = min(self._bucket(value), self.n_buckets - 1)
        self.weights[index] += weight * 2.0 ** (time_s / self.half_life_s)

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
    uses_weights = False  # its rule reads usage or rates, never the objective

    def __init__(
        self,
        variant: str | int = "resnet50",
        update_mode: str = "target",
        initial_cores: int = 8,
        half_life_s: float = 86400.0,
        margin: float = 0.15,
        downscale_patience: int = 4,
        usage: str = "throttled",
        created_s: int = 0,
        sample_period_s: int = 60,
        first_decision_s: int = 0,
        min_replicas: int = 2,
    ) -> None:
        if update_mode not in UPDATE_MODES:
            raise ValueError(f"unknown VPA update mode {update_mode!r}; valid: {', '.join(UPDATE_MODES)}")
        if usage not in USAGE_SIGNALS:
            raise ValueError(f"unknown VPA usage signal {usage!r}; valid: {', '.join(USAGE_SIGNALS)}")
        for name, value, low in (
            ("created_s", created_s, 0),
            ("sample_period_s", sample_period_s, 1),
            ("first_decision_s", first_decision_s, 0),
            ("downscale_patience", downscale_patience, 0),
            ("min_replicas", min_replicas, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"VPA {name} must be an integer >= {low}, got {value!r}")
        self.variant_spec = variant
        self.update_mode, self.initial_cores, self.half_life_s = update_mode, initial_cores, half_life_s
        self.margin, self.downscale_patience, self.usage = margin, downscale_patience, usage
        self.created_s, self.sample_period_s, self.first_decision_s = created_s, sample_period_s, first_decision_s
        self.min_replicas = min_replicas
        self.name = f"vpa-{variant}"

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.variant = variant_index(self.variant_spec, self.settings.world)
        self.histogram = DecayingHistogram(half_life_s=self.half_life_s)
        self.cores = self._clamp(self.initial_cores)
        # The paper code counts VPA's skipped lower targets as it counts the planners' lower rates.
        self.stabiliser = Stabiliser(self.downscale_patience)
        self.stabiliser.reset(level=self.cores)
        self.last_sample = -1  # index of the last sample period sampled
        self.samples, self.first_sample_s, self.last_sample_s = 0, 0, 0
        self.recommendation: dict[str, int] = {}

    def _clamp(self, cores: float) -> int:
        if cores >= self.settings.max_cores:
            return int(self.settings.max_cores)
        return int(min(max(math.ceil(cores - 1e-9), self.settings.min_cores), self.settings.max_cores))

    def confidence_days(self) -> float:
        """The recommender's confidence in its history: min(days between the first and the last
        sample, samples / 1,440) (one sample a minute for a day gives 1)."""
        return min((self.last_sample_s - self.first_sample_s) / 86_400, self.samples / 1_440)

    def recommend(self) -> dict[str, int]:
        """Target, lower and upper bound in whole cores (percentile x (1 + margin), clamped); the
        bounds scaled by the confidence in the history, as the recommender scales them."""
        lower, target, upper = (self.histogram.percentile(q) * (1 + self.margin) for q in (0.5, 0.9, 0.95))
        confidence = self.confidence_days()
        lower = lower * (1 + 0.001 / confidence) ** -2 if confidence > 0 else 0.0
        upper = upper * (1 + 1 / confidence) if confidence > 0 else math.inf
        return {"lower": self._clamp(lower), "target": self._clamp(target), "upper": self._clamp(upper)}

    def sample(self, observation: np.ndarray, time_s: int) -> None:
        """Add last interval's usage if a sample period has begun since the last sample."""
        if time_s < self.created_s:
            return
        period = (time_s - self.created_s) // self.sample_period_s
        if period <= self.last_sample:
            return
        self.last_sample = period
        allocated = float(observation[self.settings.layout.CORES][self.variant])
        allocated *= float(observation[self.settings.layout.REPLICAS][self.variant])
        used = cpu_usage_cores(observation, self.variant, self.settings.layout)
        if self.usage == "busy":
            used = allocated if used > 0 else 0.0
        self.histogram.add(used, time_s, weight=max(allocated, 1e-3))
        if self.samples == 0:
            self.first_sample_s = time_s
        self.samples, self.last_sample_s = self.samples + 1, time_s

    def decide(self, target: int) -> None:
        """The paper code's rule for a new target (``update_mode="target"``): ``Stabiliser``'s."""
        if self.stabiliser.update(target):
            self.cores = target

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        time_s = int(info.get("time_s", 0))
        if "step" in info:  # a step info: last interval's usage is in the observation
            self.sample(observation, time_s)
        if time_s >= self.first_decision_s:
            self.recommendation = self.recommend() if not self.histogram.empty else {}
            rec = self.recommendation
            if self.update_mode == "bounds":
                replicas = 1  # VPA sizes the variant's one pod
                evictable = replicas >= self.min_replicas
                if rec and evictable and not rec["lower"] <= self.cores <= rec["upper"]:
                    self.cores = rec["target"]
            else:
                self.decide(rec.get("target", self.cores))
        cores = self.settings.one_variant(self.variant, self.cores)
        return self.settings.action([1 if c else 0 for c in cores], cores)

    def decision_info(self) -> dict[str, Any]:
        """The size, the recommendation, and the dispatcher quotas: everything to the one variant
        (the paper code posts ``round(forecast)`` for it; with one variant only the share matters)."""
        return {
            "cores": self.cores,
            "quotas": self.settings.one_variant(self.variant, 1),
            **{f"vpa_{k}": v for k, v in self.recommendation.items()},
        }
