"""The leaderboard protocol: fixed scenarios, weights, seeds and env settings; one episode per row.

- Scenarios: ``paper`` (day 15, minutes 82-103) and four held-out windows of the test days
  (days 14-21), 1,260 s each, drawn once with seed ``TEST_WINDOW_SEED`` from the windows that avoid
  the daily data gap (``held_out_window_starts`` recomputes them; a test checks they still match).
- Objective weights: alpha 1 and gamma 0.001 fixed; beta swept over ``DEFAULT_BETAS``.
- Env: ``InfAdapter-v0`` with ``action_mode="replicas"`` (so that horizontal agents can act; the
  physics and the objective do not depend on the action mode), starting empty, all other settings
  at their defaults. The harness checks that the env's settings are the same after the episode.
- Seeds: ``env.reset(seed=...)``; the scenarios are fixed windows, so the seed only matters to
  stochastic agents. Decision times are measured, not replayed: they are excluded when rows are
  compared or validated.
"""

from __future__ import annotations

import copy
import hashlib
import json
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import gymnasium as gym
import numpy as np

import agents
import infadapter_env
from infadapter_env.env import SIM_VERSION
from infadapter_env.observation import N_VARIANTS
from infadapter_env.traces import scenario as load_scenario
from infadapter_env.traces import valid_window_starts
from scripts.provenance import git_commit

DEFAULT_BETAS = (0.01, 0.02, 0.05, 0.1, 0.2)
ALPHA, GAMMA = 1.0, 0.001
EPISODE_S = 1260
TEST_WINDOW_SEED = 2023
TEST_WINDOWS = 4
TEST_WINDOW_STARTS = (58_751, 107_977, 150_079, 324_766)  # seconds into the test split
ACTION_MODE = "replicas"

# Columns that are measurements of this machine, not functions of the recorded inputs.
TIMING_COLUMNS = ("decision_ms_mean", "decision_ms_p99", "wall_s")
METRIC_COLUMNS = (
    "objective",
    "slo_violation_pct",
    "dropped_pct",
    "aa_effective",
    "aa_planned",
    "mean_cores",
    "loading_cost",
    "reconfigurations",
    "fallbacks",
    "p99_mean_ms",
    "p99_worst_ms",
    "arrivals",
    "steps",
)
COLUMNS = (
    "agent",
    "beta",
    "scenario",
    "seed",
    *METRIC_COLUMNS,
    *TIMING_COLUMNS,
    "actions",
    "env_settings",
    "agent_options",
    "package_version",
    "git_commit",
    "row_sha256",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    env_kwargs: Mapping[str, Any]


def held_out_window_starts() -> tuple[int, ...]:
    """The held-out windows, recomputed from the recorded seed."""
    starts = valid_window_starts(load_scenario("test"), EPISODE_S)
    chosen = np.random.default_rng(TEST_WINDOW_SEED).choice(starts, size=TEST_WINDOWS, replace=False)
    return tuple(sorted(int(s) for s in chosen))


def scenarios() -> dict[str, Scenario]:
    out = {"paper": Scenario("paper", {"scenario": "paper"})}
    for k, start in enumerate(TEST_WINDOW_STARTS, start=1):
        kwargs = {"scenario": "test", "episode_length_s": EPISODE_S, "window_start_s": start}
        out[f"test{k}"] = Scenario(f"test{k}", kwargs)
    return out


def env_kwargs(scenario: Scenario, beta: float) -> dict[str, Any]:
    return {**scenario.env_kwargs, "alpha": ALPHA, "beta": beta, "gamma": GAMMA, "action_mode": ACTION_MODE}


@dataclass(frozen=True)
class Task:
    """One row to compute."""

    agent: str
    beta: float
    scenario: str
    seed: int


def run_task(task: Task) -> dict[str, Any]:
    """Play one episode of an agent and return its leaderboard row.

    Torch runs on one thread: parallel workers would otherwise oversubscribe the cores and the
    measured decision times would mostly measure that contention."""
    import torch

    torch.set_num_threads(1)
    scenario = scenarios()[task.scenario]
    started = time.perf_counter()
    metrics, actions, settings = play(agents.make(task.agent), env_kwargs(scenario, task.beta), task.seed)
    row: dict[str, Any] = {
        "agent": task.agent,
        "beta": task.beta,
        "scenario": task.scenario,
        "seed": task.seed,
        **{k: v for k, v in metrics.items() if k != "decision_s"},
        "decision_ms_mean": 1e3 * statistics.fmean(metrics["decision_s"]),
        "decision_ms_p99": 1e3 * float(np.percentile(metrics["decision_s"], 99)),
        "wall_s": time.perf_counter() - started,
        "actions": json.dumps(actions, separators=(",", ":")),
        "env_settings": json.dumps(settings | {"seed": task.seed, "sim_version": SIM_VERSION}, sort_keys=True),
        "agent_options": json.dumps({}),
        "package_version": infadapter_env.__version__,
        "git_commit": git_commit(),
    }
    row = {k: round(v, 12) if isinstance(v, float) else v for k, v in row.items()}
    row["row_sha256"] = row_digest(row)
    return row


def play(agent: agents.Agent, kwargs: Mapping[str, Any], seed: int) -> tuple[dict[str, Any], list, dict[str, Any]]:
    """One episode of ``agent`` in ``InfAdapter-v0(**kwargs)``: its metrics (with the decision times
    and fallbacks), its actions, and the env's recorded settings. The agent sees only observations
    and copies of the infos; a change of the env's settings voids the episode."""
    env = gym.make("InfAdapter-v0", **kwargs)
    settings = env.unwrapped.config.recorded()  # type: ignore[attr-defined]
    obs, info = env.reset(seed=seed)
    agent.reset(copy.deepcopy(info))
    actions, infos, decision_s, fallbacks = [], [], [], 0
    while True:
        tick = time.perf_counter()
        action = agent.act(obs, copy.deepcopy(info))
        decision_s.append(time.perf_counter() - tick)
        fallbacks += bool(agent.decision_info().get("fallback", False))
        actions.append(np.asarray(action).tolist())
        obs, _, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated:
            break
    if env.unwrapped.config.recorded() != settings:  # type: ignore[attr-defined]
        raise RuntimeError(f"agent {agent.name!r} changed the environment's settings; its episode is void")
    metrics = episode_metrics(infos, settings) | {"fallbacks": fallbacks, "decision_s": decision_s}
    return metrics, actions, settings


def episode_metrics(infos: list[dict[str, Any]], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The metric columns of a row from the per-step infos and the env's recorded settings (the one
    place they are computed). A reconfiguration is a step whose deployment differs from the one
    before it; before the first step runs the starting deployment (``initial_cores`` or nothing)."""
    arrivals = sum(i["arrivals"] for i in infos)
    served_accuracy = sum(i["aa_effective"] * i["arrivals"] for i in infos)
    start = settings.get("initial_cores") or [0] * N_VARIANTS
    deployments = [(tuple(1 if c else 0 for c in start), tuple(start))]
    deployments += [(tuple(i["replicas"]), tuple(i["cores_per_replica"])) for i in infos]
    return {
        "objective": statistics.fmean(i["reward"] for i in infos),
        "slo_violation_pct": 100 * sum(i["violated"] for i in infos) / arrivals if arrivals else 0.0,
        "dropped_pct": 100 * sum(i["dropped"] for i in infos) / arrivals if arrivals else 0.0,
        "aa_effective": served_accuracy / arrivals if arrivals else 0.0,
        "aa_planned": statistics.fmean(i["aa_planned"] for i in infos),
        "mean_cores": statistics.fmean(i["cores"] for i in infos),
        "loading_cost": statistics.fmean(i["lc"] for i in infos),
        "reconfigurations": sum(1 for a, b in pairwise(deployments) if a != b),
        # Intervals in which nothing was served have no latency (reported as 0): left out.
        "p99_mean_ms": statistics.fmean([i["latency_p99_ms"] for i in infos if i["latency_p99_ms"] > 0] or [0.0]),
        "p99_worst_ms": max(i["latency_p99_ms"] for i in infos),
        "arrivals": arrivals,
        "steps": len(infos),
    }


def replay(env_settings: Mapping[str, Any], actions: list[Any]) -> list[dict[str, Any]]:
    """Re-run an episode from its recorded settings and actions; the per-step infos."""
    settings = dict(env_settings)
    seed = settings.pop("seed")
    settings.pop("sim_version", None)
    if settings.get("initial_cores") is not None:
        settings["initial_cores"] = tuple(settings["initial_cores"])
    env = gym.make("InfAdapter-v0", **settings)
    env.reset(seed=seed)
    infos = []
    for action in actions:
        _, _, _, _, info = env.step(np.asarray(action))
        infos.append(info)
    return infos


def row_digest(row: Mapping[str, Any]) -> str:
    """Checksum of a row's recorded content (all but timing and the checksum itself), so that a
    half-written or edited row is detected."""
    content = {k: _canonical(row[k]) for k in COLUMNS if k not in TIMING_COLUMNS and k != "row_sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _canonical(value: Any) -> str:
    """The text a value has in the CSV (floats are rounded to 12 places before they are written)."""
    return repr(value) if isinstance(value, float) else str(value)
