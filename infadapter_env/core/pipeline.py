"""One step of N environments over arrays: decode, deploy, simulate, score, observe, report.

The scalar ``InfAdapterEnv`` runs it with N = 1 and the vector ``InfAdapterVectorEnv`` with N
environments, so scoring, the observation and the info are written once. The simulation itself is
passed in: the fast model (``sim.fast.simulate_interval``) or the request-level simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from infadapter_env.arrays import filled, row_sum
from infadapter_env.core import pipeline_kernels as kernels
from infadapter_env.core.actions import ActionDecoder, ActionFix
from infadapter_env.core.objective import loading_cost_batch, objective_value, resource_cost
from infadapter_env.core.observation import ObservationLayout
from infadapter_env.core.settings import EnvSettings
from infadapter_env.sim.cluster import ClusterState, IntervalResult, QuotaPlan, deploy, no_quotas
from infadapter_env.sim.fast import server_tables, simulate_interval
from infadapter_env.world.profiles import CapacityProfile

FIX_LABELS = np.array([fix.label for fix in ActionFix], dtype=object)  # info["action_fix"] by ActionFix value
P99_OBSERVATION_CAP = 20.0  # last interval's P99 / SLO is clipped here in the observation

# (state, per_tick, quotas or None) -> (state, result)
Simulate = Callable[[ClusterState, np.ndarray, QuotaPlan | None], tuple[ClusterState, IntervalResult]]


def observation_high(config: EnvSettings, profile: CapacityProfile, peak_rps: float) -> np.ndarray:
    """Upper bounds of the observation (``observation.fields`` documents them)."""
    max_capacity = float(profile.per_replica_rps.max())
    alpha, beta, gamma = config.weight_bounds
    return config.layout().upper_bounds(
        {
            "ALPHA": alpha,
            "BETA": beta,
            "GAMMA": gamma,
            "MINUTE_PEAKS": peak_rps,
            "MEAN_RATE": peak_rps,
            "PEAK_RATE": peak_rps,
            "CORES": config.max_cores_per_replica,
            "REPLICAS": config.replica_limit,
            "LOADING_LEFT": float(profile.load_time_s.max()),
            "UTILISATION": 1.0,
            "BACKLOG": max(config.queue_factor * config.replica_limit * max_capacity, 1.0),
            "VIOLATION_RATE": 1.0,
            "DROP_RATE": 1.0,
            "RESOURCE_COST": 1.0,
            "PROGRESS": 1.0,
            "P99_OVER_SLO": P99_OBSERVATION_CAP,
            "AVAILABLE_CORES": 1.0,
        }
    )


class StepPipeline:
    """The step of ``InfAdapter-v0`` for N environments with one set of settings."""

    def __init__(self, config: EnvSettings, profile: CapacityProfile, decoder: ActionDecoder, high: np.ndarray) -> None:
        self.settings = config
        self.profile = profile
        self.decoder = decoder
        self.high = high
        self.layout: ObservationLayout = config.layout()
        self.tables = server_tables(profile)
        self.accuracy = np.ascontiguousarray(profile.accuracy, dtype=np.float64)
        self.load_time = profile.load_time_s
        # where the report kernel writes each of ``pipeline_kernels.OBSERVED``
        positions = [self.layout.positions[name] for name in kernels.OBSERVED]
        self.observed_starts = np.array([p.start if isinstance(p, slice) else p for p in positions], dtype=np.int64)
        weights = config.weights
        # the report kernel's inputs that every step shares (``pipeline_kernels.Scoring``, ``ObservationBounds``)
        self.scoring = tuple(
            kernels.Scoring(
                profile.per_replica_rps,
                self.accuracy,
                float(config.interval_s),
                float(config.slo_ms),
                float(config.budget_cores),
                float(weights.alpha),
                float(weights.gamma),
            )
        )
        self.observation_bounds = tuple(kernels.ObservationBounds(self.observed_starts, high))

    def fast(
        self, state: ClusterState, per_tick: np.ndarray, quotas: QuotaPlan | None = None, threads: int = 1
    ) -> tuple[ClusterState, IntervalResult]:
        """The fast model's interval (``Simulate``), its environments split over ``threads``."""
        cfg = self.settings
        return simulate_interval(
            state, per_tick, self.tables, cfg.dispatcher, cfg.queue_factor, quotas, threads, cfg.replica_routing
        )

    def reset_observation(
        self, state: ClusterState, minute_peaks: np.ndarray, beta: np.ndarray | None = None
    ) -> np.ndarray:
        """The observation before the first interval (N, SIZE); ``beta`` (N,): each episode's beta
        (None: the setting's)."""
        obs = np.zeros((len(minute_peaks), self.layout.size), dtype=np.float32)
        obs[:, self.layout.MINUTE_PEAKS] = minute_peaks
        obs[:, self.layout.CORES] = state.cores
        obs[:, self.layout.REPLICAS] = state.replicas
        obs[:, self.layout.RESOURCE_COST] = resource_cost(
            row_sum(state.cores * state.replicas), self.settings.budget_cores
        )
        self.observe_weights(obs, beta)
        self.observe_budget(obs, np.zeros(len(obs), dtype=np.int64))
        np.minimum(obs, self.high, out=obs)
        return obs

    def observe_budget(self, obs: np.ndarray, next_step: np.ndarray) -> None:
        """Write the cores available in interval ``next_step`` (N,) into ``obs`` (``budget_trace`` only)."""
        available = self.settings.available_cores(next_step)
        if available is not None:
            obs[:, self.layout.AVAILABLE_CORES] = available / self.settings.budget_cores

    def observe_weights(self, obs: np.ndarray, beta: np.ndarray | None) -> None:
        """Write the objective's weights into ``obs`` (with ``observe_weights`` only)."""
        if self.layout.observe_weights:
            weights = self.settings.weights
            obs[:, self.layout.ALPHA] = weights.alpha
            obs[:, self.layout.BETA] = weights.beta if beta is None else beta
            obs[:, self.layout.GAMMA] = weights.gamma

    def step(
        self,
        state: ClusterState,
        values: np.ndarray,
        per_tick: np.ndarray,
        minute_peaks: np.ndarray,
        steps_done: np.ndarray,
        n_steps: int,
        simulate: Simulate,
        quotas: QuotaPlan | None = None,
        beta: np.ndarray | None = None,
    ) -> tuple[ClusterState, np.ndarray, np.ndarray, StepReport]:
        """Apply checked actions ``values`` (N, entries) and play one interval of ``per_tick`` (N, T).

        ``minute_peaks`` (N, 10): the observation's history after the interval; ``steps_done`` (N,):
        steps played after this one; ``quotas``: the quota dispatcher's quotas, if the controller set
        them; ``beta`` (N,): each episode's beta (drawn from ``betas``; None: the setting's).
        Returns the new state, rewards, observations and the step's info (``StepReport``)."""
        cfg = self.settings
        available = cfg.available_cores(steps_done - 1)  # this interval's (budget_trace only)
        replicas, cores, fix, changed = self.decoder.decode_batch(values, state.replicas, state.cores, available)
        if np.count_nonzero(changed):
            lc = loading_cost_batch(state.replicas, state.cores, replicas, cores, self.load_time)
            state = deploy(state, replicas, cores, self.load_time)
        else:
            lc = np.zeros(len(values))  # nothing started, resized or removed anywhere
        state, result = simulate(state, per_tick, quotas)
        # the quotas routing at the interval's end (NaN: none set)
        n_env, n_var = len(values), len(self.accuracy)
        routing = (no_quotas(n_env, n_var) if quotas is None else quotas.after(state.loading_left_s)).current
        service = np.empty((len(kernels.SERVICE_FLOATS), n_env))
        by_variant = np.empty((len(kernels.VARIANT_FLOATS), n_env, n_var))
        obs = np.empty((n_env, self.high.size), dtype=np.float32)
        kernels.report(
            (result.by_env, result.by_variant),  # ``IntervalArrays``
            (replicas, cores, routing, state.loading_left_s, state.backlog),  # ``DeploymentArrays``
            self.scoring,
            (  # ``EpisodeArrays``
                lc,
                filled(n_env, float(cfg.weights.beta)) if beta is None else np.asarray(beta, dtype=np.float64),
                np.asarray(minute_peaks, dtype=np.float64),
                steps_done,
                n_steps,
            ),
            self.observation_bounds,
            (service, by_variant, obs),  # ``ReportOutputs``
        )
        if self.layout.observe_weights or available is not None:
            self.observe_weights(obs, beta)
            self.observe_budget(obs, steps_done)
            np.minimum(obs, self.high, out=obs)
        report = StepReport(service, by_variant, replicas, cores, fix, steps_done, cfg.interval_s, available)
        if cfg.reward_mode == "vector":  # the objective's terms, unweighted (MO-Gymnasium style)
            return state, np.stack([service[AA_EFFECTIVE], -service[RC], -service[LC]], axis=1), obs, report
        return state, service[REWARD], obs, report


TOTAL_CORES, AA_EFFECTIVE, RC, LC, REWARD = (
    kernels.SERVICE_FLOATS.index(name) for name in ("cores", "aa_effective", "rc", "lc", "reward")
)


@dataclass(slots=True, eq=False)
class StepReport:
    """The info of a step of N environments (the env docstring lists its keys): the report kernel's
    packed numbers, the objective's terms and the deployment. ``arrays()`` is the vector env's info,
    ``scalar(weights)`` the scalar env's (environment 0, plain Python values)."""

    service: np.ndarray  # (len(SERVICE_FLOATS), N): the service as a whole, with rc, lc, reward, objective_planned
    by_variant: np.ndarray  # (len(VARIANT_FLOATS), N, V)
    replicas: np.ndarray  # (N, V) the deployment asked for, after the action's fixes
    cores: np.ndarray
    fix: np.ndarray  # (N,) ``ActionFix`` values
    steps_done: np.ndarray  # (N,)
    interval_s: int
    available: np.ndarray | None  # (N,) cores available in the interval (budget_trace only)

    def arrays(self) -> dict[str, np.ndarray]:
        """The info as arrays over the N environments."""
        info: dict[str, np.ndarray] = {"step": self.steps_done, "time_s": self.steps_done * self.interval_s}
        info.update(zip(kernels.SERVICE_FLOATS, self.service, strict=True))
        info.update(zip(kernels.VARIANT_FLOATS, self.by_variant, strict=True))
        info["cores"] = self.service[TOTAL_CORES].astype(np.int64)
        info.update(
            replicas=self.replicas,
            cores_per_replica=self.cores,
            action_fix=FIX_LABELS[self.fix],
        )
        if self.available is not None:
            info["available_cores"] = self.available
        return info

    def scalar(self, weights: Any) -> dict[str, Any]:
        """The info of environment 0 as plain Python values, with ``reward_terms`` under ``weights``."""
        step = int(self.steps_done[0])
        info: dict[str, Any] = {"step": step, "time_s": step * self.interval_s}
        info.update(zip(kernels.SERVICE_FLOATS, self.service[:, 0].tolist(), strict=True))
        info.update(zip(kernels.VARIANT_FLOATS, self.by_variant[:, 0].tolist(), strict=True))
        info["cores"] = int(info["cores"])
        info.update(
            replicas=self.replicas[0].tolist(),
            cores_per_replica=self.cores[0].tolist(),
            action_fix=FIX_LABELS[self.fix[0]],
        )
        if self.available is not None:
            info["available_cores"] = int(self.available[0])
        info["reward_terms"] = reward_terms(info, weights)
        return info


def reward_terms(info: dict[str, Any], weights: Any) -> dict[str, float]:
    """The weighted terms of a step's reward (``info["reward_terms"]``) from its (scalar) info."""
    return {
        "accuracy": weights.alpha * info["aa_effective"],
        "resource": -weights.beta * info["rc"],
        "loading": -weights.gamma * info["lc"],
    }


def reweighted_info(info: dict[str, Any], weights: Any) -> dict[str, Any]:
    """A step's (scalar) info as it would read under other objective weights: the simulation does
    not depend on them, so only ``reward``, ``objective_planned`` and ``reward_terms`` change."""
    out = dict(info)
    out["reward"] = float(objective_value(info["aa_effective"], info["rc"], info["lc"], weights))
    out["objective_planned"] = float(objective_value(info["aa_planned"], info["rc"], info["lc"], weights))
    out["reward_terms"] = reward_terms(info, weights)
    return out
