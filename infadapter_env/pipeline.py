"""One step of N environments over arrays: decode, deploy, simulate, score, observe, report.

The scalar ``InfAdapterEnv`` runs it with N = 1 and the vector ``InfAdapterVectorEnv`` with N
environments, so scoring, the observation and the info are written once. The simulation itself is
passed in: the fast model (``fast_sim.simulate_interval``) or the request-level simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from infadapter_env.config import EnvConfig
from infadapter_env.deployment import ActionDecoder, ActionFix
from infadapter_env.fast_sim import ClusterState, IntervalResult, QuotaPlan, deploy, server_tables, simulate_interval
from infadapter_env.objective import average_accuracy_batch, loading_cost_batch, objective_value, resource_cost
from infadapter_env.observation import ObservationLayout
from infadapter_env.profiles import CapacityProfile
from infadapter_env.reductions import row_sum

FIX_LABELS = np.array([fix.label for fix in ActionFix], dtype=object)  # info["action_fix"] by ActionFix value
P99_OBSERVATION_CAP = 20.0  # last interval's P99 / SLO is clipped here in the observation

# (state, per_tick, quotas or None) -> (state, result)
Simulate = Callable[[ClusterState, np.ndarray, QuotaPlan | None], tuple[ClusterState, IntervalResult]]


def observation_high(config: EnvConfig, profile: CapacityProfile, peak_rps: float) -> np.ndarray:
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


@dataclass(frozen=True)
class EpisodeWeights:
    """The objective's weights with one beta per environment (drawn from ``betas`` at reset)."""

    alpha: float
    beta: np.ndarray
    gamma: float


class StepPipeline:
    """The step of ``InfAdapter-v0`` for N environments with one set of settings."""

    def __init__(self, config: EnvConfig, profile: CapacityProfile, decoder: ActionDecoder, high: np.ndarray) -> None:
        self.config = config
        self.profile = profile
        self.decoder = decoder
        self.high = high
        self.layout: ObservationLayout = config.layout()
        self.tables = server_tables(profile)
        self.accuracy = profile.accuracy
        self.load_time = profile.load_time_s

    def fast(
        self, state: ClusterState, per_tick: np.ndarray, quotas: QuotaPlan | None = None
    ) -> tuple[ClusterState, IntervalResult]:
        """The fast model's interval (``Simulate``)."""
        cfg = self.config
        return simulate_interval(state, per_tick, self.tables, cfg.dispatcher, cfg.queue_factor, quotas)

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
            row_sum(state.cores * state.replicas), self.config.budget_cores
        )
        self.observe_weights(obs, beta)
        self.observe_budget(obs, np.zeros(len(obs), dtype=np.int64))
        np.minimum(obs, self.high, out=obs)
        return obs

    def observe_budget(self, obs: np.ndarray, next_step: np.ndarray) -> None:
        """Write the cores available in interval ``next_step`` (N,) into ``obs`` (``budget_trace`` only)."""
        available = self.config.available_cores(next_step)
        if available is not None:
            obs[:, self.layout.AVAILABLE_CORES] = available / self.config.budget_cores

    def observe_weights(self, obs: np.ndarray, beta: np.ndarray | None) -> None:
        """Write the objective's weights into ``obs`` (with ``observe_weights`` only)."""
        if self.layout.observe_weights:
            weights = self.config.weights
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
    ) -> tuple[ClusterState, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Apply checked actions ``values`` (N, entries) and play one interval of ``per_tick`` (N, T).

        ``minute_peaks`` (N, 10): the observation's history after the interval; ``steps_done`` (N,):
        steps played after this one; ``quotas``: the quota dispatcher's quotas, if the controller set
        them; ``beta`` (N,): each episode's beta (drawn from ``betas``; None: the setting's).
        Returns the new state, rewards, observations and info arrays."""
        available = self.config.available_cores(steps_done - 1)  # this interval's (budget_trace only)
        replicas, cores, fix = self.decoder.decode_batch(values, state.replicas, state.cores, available)
        if np.array_equal(replicas, state.replicas) and np.array_equal(cores, state.cores):
            lc = np.zeros(len(values))  # nothing started or resized anywhere
        else:
            lc = loading_cost_batch(state.replicas, state.cores, replicas, cores, self.load_time)
        state = deploy(state, replicas, cores, self.load_time)
        state, result = simulate(state, per_tick, quotas)
        routing = None if quotas is None else quotas.after(state.loading_left_s).current  # at the interval's end
        terms = self.score(result, replicas, cores, lc, routing, beta)
        obs = self.observe(state, result, terms, minute_peaks, steps_done / n_steps, beta, steps_done)
        info = self.report(state, result, terms, steps_done, fix)
        if available is not None:
            info["available_cores"] = available
        if self.config.reward_mode == "vector":  # the objective's terms, unweighted (MO-Gymnasium style)
            return state, np.stack([terms["aa_effective"], -terms["rc"], -terms["lc"]], axis=1), obs, info
        return state, terms["reward"], obs, info

    def score(
        self,
        result: IntervalResult,
        replicas: np.ndarray,
        cores: np.ndarray,
        lc: np.ndarray,
        quotas: np.ndarray | None,
        beta: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The objective's terms and the interval's rates (arrays over the N environments);
        ``beta`` (N,): each episode's beta (None: the setting's)."""
        cfg = self.config
        weights: Any = cfg.weights if beta is None else EpisodeWeights(cfg.alpha, beta, cfg.gamma)
        total = result.arrivals
        mean_rate = total / cfg.interval_s
        has_arrivals = total > 0
        divisor = np.where(has_arrivals, total, 1.0)
        target_capacity = self.profile.capacity_rps(replicas, cores)
        aa_effective = result.in_slo @ self.accuracy / divisor
        if not has_arrivals.all():  # an interval without arrivals scores the AA of rate 0
            at_zero = average_accuracy_batch(target_capacity, self.accuracy, np.zeros_like(total))
            aa_effective = np.where(has_arrivals, aa_effective, at_zero)
        violated = result.over_slo + result.dropped
        aa_planned = average_accuracy_batch(target_capacity, self.accuracy, mean_rate)
        if quotas is not None:  # the quotas' weighted accuracy (the original adapter's gauge; NaN: none set)
            weight = np.where(target_capacity > 0, np.rint(np.nan_to_num(quotas, nan=0.0)), 0.0)
            total_weight = weight.sum(axis=1)
            by_quota = weight @ self.accuracy / np.maximum(total_weight, 1e-300)
            aa_planned = np.where(total_weight > 0, by_quota, aa_planned)
        total_cores = row_sum(replicas * cores).astype(np.int64)
        rc = resource_cost(total_cores, cfg.budget_cores)
        return {
            "mean_rate": mean_rate,
            "violated": violated,
            "violation_rate": np.where(has_arrivals, violated / divisor, 0.0),
            "drop_rate": np.where(has_arrivals, result.dropped / divisor, 0.0),
            "aa_effective": aa_effective,
            "aa_planned": aa_planned,
            "target_capacity": target_capacity,
            "replicas": replicas,
            "cores": cores,
            "total_cores": total_cores,
            "rc": rc,
            "lc": lc,
            "reward": objective_value(aa_effective, rc, lc, weights),
            "objective_planned": objective_value(aa_planned, rc, lc, weights),
        }

    def observe(
        self,
        state: ClusterState,
        result: IntervalResult,
        terms: dict[str, np.ndarray],
        minute_peaks: np.ndarray,
        progress: np.ndarray,
        beta: np.ndarray | None = None,
        steps_done: np.ndarray | None = None,
    ) -> np.ndarray:
        """The observations (N, SIZE) after an interval, clipped to the bounds (``steps_done``: the
        index of the coming interval, for the available cores)."""
        obs = np.empty((len(progress), self.layout.size), dtype=np.float32)
        obs[:, self.layout.MINUTE_PEAKS] = minute_peaks
        obs[:, self.layout.MEAN_RATE] = terms["mean_rate"]
        obs[:, self.layout.PEAK_RATE] = result.peak_rate_rps
        obs[:, self.layout.CORES] = terms["cores"]
        obs[:, self.layout.REPLICAS] = terms["replicas"]
        obs[:, self.layout.LOADING_LEFT] = state.loading_left_s
        obs[:, self.layout.UTILISATION] = result.busy
        obs[:, self.layout.BACKLOG] = state.backlog
        obs[:, self.layout.VIOLATION_RATE] = terms["violation_rate"]
        obs[:, self.layout.DROP_RATE] = terms["drop_rate"]
        obs[:, self.layout.RESOURCE_COST] = terms["rc"]
        obs[:, self.layout.PROGRESS] = progress
        obs[:, self.layout.P99_OVER_SLO] = result.p99_ms / self.config.slo_ms
        self.observe_weights(obs, beta)
        if steps_done is not None:
            self.observe_budget(obs, steps_done)
        np.minimum(obs, self.high, out=obs)
        return obs

    def report(
        self,
        state: ClusterState,
        result: IntervalResult,
        terms: dict[str, np.ndarray],
        steps_done: np.ndarray,
        fix: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """The info arrays of a step (the env docstring lists them)."""
        return {
            "step": steps_done,
            "time_s": steps_done * self.config.interval_s,
            "arrivals": result.arrivals,
            "mean_rate_rps": terms["mean_rate"],
            "peak_rate_rps": result.peak_rate_rps,
            "served_in_slo": row_sum(result.in_slo),
            "served_in_slo_by_variant": result.in_slo,
            "violated": terms["violated"],
            "over_slo": result.over_slo,
            "dropped": result.dropped,
            "lost_on_removal": result.lost,
            "slo_violation_rate": terms["violation_rate"],
            "drop_rate": terms["drop_rate"],
            "latency_p50_ms": result.p50_ms_all,
            "latency_p99_ms": result.p99_ms_all,
            "latency_p50_ms_by_variant": result.p50_ms,
            "latency_p99_ms_by_variant": result.p99_ms,
            "aa_effective": terms["aa_effective"],
            "aa_planned": terms["aa_planned"],
            "rc": terms["rc"],
            "lc": terms["lc"],
            "cores": terms["total_cores"],
            "reward": terms["reward"],
            "objective_planned": terms["objective_planned"],
            "replicas": terms["replicas"],
            "cores_per_replica": terms["cores"],
            "capacity_rps": terms["target_capacity"],
            "loading_left_s": state.loading_left_s,
            "utilisation": result.busy,
            "backlog": state.backlog,
            "action_fix": FIX_LABELS[fix],
        }


def scalar_info(info: dict[str, np.ndarray], weights: Any) -> dict[str, Any]:
    """The info of environment 0 of a step as plain Python values (the scalar env's info)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        item = value[0]
        out[key] = item.tolist() if isinstance(item, np.ndarray) else (item.item() if hasattr(item, "item") else item)
    out["reward_terms"] = reward_terms(out, weights)
    return out


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
