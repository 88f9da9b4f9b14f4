"""The leaderboard protocols: fixed scenarios, contenders, weights, seeds and env settings; one
episode per row. ``infadapter leaderboard --protocol NAME`` picks one (``PROTOCOLS``).

``default`` (this benchmark's own choices):

- Scenarios: ``paper`` (day 15, minutes 82-103) and four held-out windows of the test days
  (days 14-21), 1,260 s each, drawn once with seed ``TEST_WINDOW_SEED`` from the windows that avoid
  the daily data gap (``held_out_window_starts`` recomputes them; a test checks they still match).
- Contenders: every registered agent with its default options, starting from an empty cluster.
- Env: ``InfAdapter-v0`` with ``action_mode="replicas"`` (so that horizontal agents can act; the
  physics and the objective do not depend on the action mode), all other settings at their
  defaults (fast simulator, accuracy-first dispatcher). Seed 0.

``paper-2023`` (the experiment as the original code ran it, ``reconfigurable-ml-pipeline/InfAdapter``):

- The paper slice on the request-level simulator, arrivals from the original load generator
  (``"loadgen"``), the original dispatcher (``"quota"``, fed the planner's quotas), seeds 0-4.
- Contenders: ``infadapter`` and ``ms+`` start as ResNet152 at 20 cores, loaded before the load
  starts (``auto_tuner/starter.py``), make no decision for the first 2 minutes
  (``FIRST_DECIDE_DELAY_MINUTES``) and forecast from the run's own history only (EWM until 10
  minutes exist, then the LSTM; +10 %). ``vpa-<m>/<usage>`` starts as ResNet-m at 20 cores, its VPA
  object is created after 60 s, samples once a minute, and the adapter applies its target from
  2 minutes on (the paper code's rule in ``agents.vpa``), under each usage signal
  (``throttled``, ``busy``).

Both: objective weights alpha 1 and gamma 0.001 fixed, beta swept over ``DEFAULT_BETAS``. The
harness checks that the env's settings are the same after the episode. Seeds go to
``env.reset(seed=...)``. Decision times are measured, not replayed: they are excluded when rows
are compared or validated.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import gymnasium as gym
import numpy as np

import infadapter_agents
import infadapter_env
from infadapter_env.env import SIM_VERSION
from infadapter_env.observation import N_VARIANTS
from infadapter_env.traces import scenario as load_scenario
from infadapter_env.traces import valid_window_starts
from infadapter_scripts.provenance import git_commit

DEFAULT_BETAS = (0.01, 0.02, 0.05, 0.1, 0.2)
ALPHA, GAMMA = 1.0, 0.001
EPISODE_S = 1260
TEST_WINDOW_SEED = 2023
TEST_WINDOWS = 4
TEST_WINDOW_STARTS = (58_751, 107_977, 150_079, 324_766)  # seconds into the test split
ACTION_MODE = "replicas"
VPA_DEPTHS = (18, 34, 50, 101, 152)
VPA_USAGE_SIGNALS = ("throttled", "busy")

# Columns that are measurements of this machine, not functions of the recorded inputs.
TIMING_COLUMNS = ("decision_ms_mean", "decision_ms_p99", "wall_s")
METRIC_COLUMNS = (
    "objective",
    "slo_violation_pct",
    "window_violation_pct",
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
    "protocol",
    "agent",
    "beta",
    "scenario",
    "seed",
    *METRIC_COLUMNS,
    *TIMING_COLUMNS,
    "actions",
    "quotas",
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


@dataclass(frozen=True)
class Contender:
    """One row label of a protocol: a registered agent, its options, and its own env settings."""

    label: str
    agent: str
    options: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Protocol:
    """Everything that fixes a leaderboard: scenarios, contenders, seeds and common env settings."""

    name: str
    scenarios: Mapping[str, Scenario]
    seeds: tuple[int, ...]
    env: Mapping[str, Any]
    contenders: Callable[[], dict[str, Contender]]
    default_out: str


def held_out_window_starts() -> tuple[int, ...]:
    """The held-out windows, recomputed from the recorded seed."""
    starts = valid_window_starts(load_scenario("test"), EPISODE_S)
    chosen = np.random.default_rng(TEST_WINDOW_SEED).choice(starts, size=TEST_WINDOWS, replace=False)
    return tuple(sorted(int(s) for s in chosen))


def scenarios() -> dict[str, Scenario]:
    """The default protocol's scenarios."""
    out = {"paper": Scenario("paper", {"scenario": "paper"})}
    for k, start in enumerate(TEST_WINDOW_STARTS, start=1):
        kwargs = {"scenario": "test", "episode_length_s": EPISODE_S, "window_start_s": start}
        out[f"test{k}"] = Scenario(f"test{k}", kwargs)
    return out


def default_contenders() -> dict[str, Contender]:
    return {name: Contender(name, name) for name in infadapter_agents.names()}


# The original experiments (auto_tuner/starter.py, adapter/main.py, adapter/notifier.py).
PAPER_START_CORES = 20
PAPER_FIRST_DECISION_S = 120
PAPER_VPA_CREATED_S = 60
PAPER_VPA_SAMPLE_PERIOD_S = 60


def paper_contenders() -> dict[str, Contender]:
    start_152 = {"initial_cores": [0, 0, 0, 0, PAPER_START_CORES]}
    planner = {"first_decision_s": PAPER_FIRST_DECISION_S, "history": "run"}
    out = {name: Contender(name, name, planner, start_152) for name in ("infadapter", "ms+")}
    for usage in VPA_USAGE_SIGNALS:
        for k, depth in enumerate(VPA_DEPTHS):
            options = {
                "initial_cores": PAPER_START_CORES,
                "created_s": PAPER_VPA_CREATED_S,
                "sample_period_s": PAPER_VPA_SAMPLE_PERIOD_S,
                "first_decision_s": PAPER_FIRST_DECISION_S,
                "usage": usage,
            }
            start = {"initial_cores": [PAPER_START_CORES if v == k else 0 for v in range(N_VARIANTS)]}
            label = f"vpa-{depth}/{usage}"
            out[label] = Contender(label, f"vpa-{depth}", options, start)
    return out


PROTOCOLS = {
    "default": Protocol(
        "default", scenarios(), (0,), {"action_mode": ACTION_MODE}, default_contenders, "results/leaderboard"
    ),
    "paper-2023": Protocol(
        "paper-2023",
        {"paper": Scenario("paper", {"scenario": "paper"})},
        (0, 1, 2, 3, 4),
        {"action_mode": ACTION_MODE, "simulator": "request", "arrivals": "loadgen", "dispatcher": "quota"},
        paper_contenders,
        "results/paper-2023",
    ),
}


def env_kwargs(
    scenario: Scenario, beta: float, protocol: str = "default", contender: Contender | None = None
) -> dict[str, Any]:
    """The env settings of one episode of a protocol."""
    own = dict(contender.env) if contender is not None else {}
    if own.get("initial_cores") is not None:
        own["initial_cores"] = tuple(own["initial_cores"])
    weights = {"alpha": ALPHA, "beta": beta, "gamma": GAMMA}
    return {**scenario.env_kwargs, **weights, **PROTOCOLS[protocol].env, **own}


@dataclass(frozen=True)
class Task:
    """One row to compute."""

    protocol: str
    agent: str
    beta: float
    scenario: str
    seed: int


def run_task(task: Task) -> dict[str, Any]:
    """Play one episode of a contender and return its leaderboard row.

    Torch runs on one thread: parallel workers would otherwise oversubscribe the cores and the
    measured decision times would mostly measure that contention."""
    import torch

    torch.set_num_threads(1)
    protocol = PROTOCOLS[task.protocol]
    scenario = protocol.scenarios[task.scenario]
    contender = protocol.contenders()[task.agent]
    agent = infadapter_agents.make(contender.agent, **contender.options)
    started = time.perf_counter()
    kwargs = env_kwargs(scenario, task.beta, task.protocol, contender)
    metrics, actions, quotas, settings = play(agent, kwargs, task.seed)
    row: dict[str, Any] = {
        "protocol": task.protocol,
        "agent": task.agent,
        "beta": task.beta,
        "scenario": task.scenario,
        "seed": task.seed,
        **{k: v for k, v in metrics.items() if k != "decision_s"},
        "decision_ms_mean": 1e3 * statistics.fmean(metrics["decision_s"]),
        "decision_ms_p99": 1e3 * float(np.percentile(metrics["decision_s"], 99)),
        "wall_s": time.perf_counter() - started,
        "actions": json.dumps(actions, separators=(",", ":")),
        "quotas": json.dumps(quotas, separators=(",", ":")) if any(q is not None for q in quotas) else "",
        "env_settings": json.dumps(settings | {"seed": task.seed, "sim_version": SIM_VERSION}, sort_keys=True),
        "agent_options": json.dumps({"agent": contender.agent, **contender.options}, sort_keys=True),
        "package_version": infadapter_env.__version__,
        "git_commit": git_commit(),
    }
    row = {k: round(v, 12) if isinstance(v, float) else v for k, v in row.items()}
    row["row_sha256"] = row_digest(row)
    return row


def play(
    agent: infadapter_agents.Agent, kwargs: Mapping[str, Any], seed: int
) -> tuple[dict[str, Any], list, list, dict[str, Any]]:
    """One episode of ``agent`` in ``InfAdapter-v0(**kwargs)``: its metrics (with the decision times
    and fallbacks), its actions, the quotas it set (None where it set none; only with
    ``dispatcher="quota"``, where the planner's quotas go to the env's dispatcher as the original
    adapter posts them), and the env's recorded settings. The agent sees only observations and
    copies of the infos; a change of the env's settings voids the episode."""
    env = gym.make("InfAdapter-v0", **kwargs)
    settings = env.unwrapped.config.recorded()  # type: ignore[attr-defined]
    takes_quotas = settings["dispatcher"] == "quota"
    obs, info = env.reset(seed=seed)
    agent.reset(copy.deepcopy(info))
    actions, quotas, infos, decision_s, fallbacks = [], [], [], [], 0
    while True:
        tick = time.perf_counter()
        action = agent.act(obs, copy.deepcopy(info))
        decision_s.append(time.perf_counter() - tick)
        decision = agent.decision_info()
        fallbacks += bool(decision.get("fallback", False))
        actions.append(np.asarray(action).tolist())
        planned = decision.get("quotas") if takes_quotas else None
        quotas.append(None if planned is None else [int(q) for q in planned])
        if planned is not None:
            env.unwrapped.set_quotas(planned)  # type: ignore[attr-defined]
        obs, _, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated:
            break
    if env.unwrapped.config.recorded() != settings:  # type: ignore[attr-defined]
        raise RuntimeError(f"agent {agent.name!r} changed the environment's settings; its episode is void")
    metrics = episode_metrics(infos, settings) | {"fallbacks": fallbacks, "decision_s": decision_s}
    return metrics, actions, quotas, settings


def episode_metrics(infos: list[dict[str, Any]], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The metric columns of a row from the per-step infos and the env's recorded settings (the one
    place they are computed). A reconfiguration is a step whose deployment differs from the one
    before it; before the first step runs the starting deployment (``initial_cores`` or nothing).
    ``window_violation_pct``: the share of 5 s windows (with completions) whose P99 exceeds the
    SLO, as the original experiments recorded latency; the request-level simulator only (NaN on
    the fast one)."""
    arrivals = sum(i["arrivals"] for i in infos)
    served_accuracy = sum(i["aa_effective"] * i["arrivals"] for i in infos)
    start = settings.get("initial_cores") or [0] * N_VARIANTS
    deployments = [(tuple(1 if c else 0 for c in start), tuple(start))]
    deployments += [(tuple(i["replicas"]), tuple(i["cores_per_replica"])) for i in infos]
    windows = [w for i in infos for w in i.get("p99_windows_ms", []) if w > 0]
    window_pct = math.nan
    if windows and all("p99_windows_ms" in i for i in infos):
        window_pct = 100 * sum(w > float(settings["slo_ms"]) for w in windows) / len(windows)
    return {
        "objective": statistics.fmean(i["reward"] for i in infos),
        "slo_violation_pct": 100 * sum(i["violated"] for i in infos) / arrivals if arrivals else 0.0,
        "window_violation_pct": window_pct,
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


def replay(
    env_settings: Mapping[str, Any], actions: list[Any], quotas: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Re-run an episode from its recorded settings, actions and quotas; the per-step infos."""
    settings = dict(env_settings)
    seed = settings.pop("seed")
    settings.pop("sim_version", None)
    if settings.get("initial_cores") is not None:
        settings["initial_cores"] = tuple(settings["initial_cores"])
    env = gym.make("InfAdapter-v0", **settings)
    env.reset(seed=seed)
    infos = []
    for k, action in enumerate(actions):
        if quotas and quotas[k] is not None:
            env.unwrapped.set_quotas(quotas[k])  # type: ignore[attr-defined]
        _, _, _, _, info = env.step(np.asarray(action))
        infos.append(info)
    return infos


def row_quotas(row: Mapping[str, str]) -> list[Any] | None:
    """The recorded quotas of a row (None when the agent set none)."""
    return json.loads(row["quotas"]) if row.get("quotas") else None


def row_digest(row: Mapping[str, Any]) -> str:
    """Checksum of a row's recorded content (all but timing and the checksum itself), so that a
    half-written or edited row is detected."""
    content = {k: _canonical(row[k]) for k in COLUMNS if k not in TIMING_COLUMNS and k != "row_sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _canonical(value: Any) -> str:
    """The text a value has in the CSV (floats are rounded to 12 places before they are written)."""
    return repr(value) if isinstance(value, float) else str(value)
