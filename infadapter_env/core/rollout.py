"""Play an agent through one episode of ``InfAdapter-v0``, measure it, replay it.

``play_steps`` runs an agent (anything with ``reset(info)`` and ``act(observation, info)``) for one
episode and records every step; ``episode_metrics`` turns the per-step infos into an episode's
metrics (the one place they are computed: the leaderboard's rows, training evaluations and
validations all use it); ``replay`` re-runs an episode from its recorded settings and actions.
This is the env layer: the harness (``infadapter_env.leaderboard``) adds protocols and rows on top,
and training (``infadapter_agents.learned.training``) scores checkpoints with it.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from infadapter_env.world.traces import trace_file_digest


def play(
    agent: Any, kwargs: Mapping[str, Any], seed: int, hold_s: int = 0
) -> tuple[dict[str, Any], list, list, dict[str, Any]]:
    """One episode of ``agent`` in ``InfAdapter-v0(**kwargs)`` (``play_steps``): its metrics (with
    the decision times and fallbacks), its actions, the quotas it set, and the env's recorded settings."""
    played = play_steps(agent, kwargs, seed, hold_s)
    metrics = episode_metrics(played.infos, played.settings) | {
        "fallbacks": played.fallbacks,
        "decision_s": played.decision_s,
    }
    return metrics, played.actions, played.quotas, played.settings


_IMMUTABLE = (int, float, str, bool, type(None))


def private_copy(value: Any) -> Any:
    """A copy of an info an agent may change freely: dicts, lists and tuples copied all the way down,
    arrays copied, scalars shared. ``copy.deepcopy`` would do the same for an info (JSON-like data)
    at several times the cost; any other object is deep-copied."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is dict:
        return {key: item if type(item) in _IMMUTABLE else private_copy(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        items = [item if type(item) in _IMMUTABLE else private_copy(item) for item in value]
        return items if kind is list else tuple(items)
    if kind is np.ndarray:
        return value.copy()
    return copy.deepcopy(value)


@dataclass(frozen=True)
class Played:
    """One played episode, step by step."""

    infos: list[dict[str, Any]]  # the env's info of every step
    actions: list[Any]
    quotas: list[Any]  # None where the agent set none
    settings: dict[str, Any]  # the env's recorded settings
    decision_s: list[float]  # the agent's decision time of every step
    fallbacks: int
    reset_info: dict[str, Any]
    arrivals: np.ndarray  # the requests of every played second (the episode's trace, as the env read it)


def play_steps(agent: Any, kwargs: Mapping[str, Any], seed: int, hold_s: int = 0) -> Played:
    """One episode of ``agent`` (``reset(info)``, ``act(observation, info)``, optionally
    ``decision_info()``) in ``InfAdapter-v0(**kwargs)``, recorded step by step. The quotas are set
    only with ``dispatcher="quota"``, where the planner's quotas go to the env's dispatcher as the
    original adapter posts them. The agent sees only observations and copies of the infos; a change
    of the env's settings voids the episode. Before second ``hold_s`` (a protocol's hold) the
    deployment in place is kept whatever the agent answers."""
    env = gym.make("InfAdapter-v0", **kwargs)
    settings = env.unwrapped.settings.recorded()  # type: ignore[attr-defined]
    takes_quotas = settings["dispatcher"] == "quota"
    obs, info = env.reset(seed=seed)
    reset_info = private_copy(info)
    agent.reset(private_copy(info))
    actions, quotas, infos, decision_s, fallbacks = [], [], [], [], 0
    while True:
        tick = time.perf_counter()
        action = agent.act(obs, private_copy(info))
        decision_s.append(time.perf_counter() - tick)
        decision = agent.decision_info() if hasattr(agent, "decision_info") else {}
        fallbacks += bool(decision.get("fallback", False))
        planned = decision.get("quotas") if takes_quotas else None
        if int(info.get("time_s", 0)) < hold_s:  # the protocol's hold: the agent observes, nothing changes
            layout = env.unwrapped.layout  # type: ignore[attr-defined]
            action = env.unwrapped.encode_action(obs[layout.REPLICAS], obs[layout.CORES])  # type: ignore[attr-defined]
            planned = None
        actions.append(np.asarray(action).tolist())
        # Recorded as given (whole numbers as ints), so that a replay sets exactly the same quotas.
        quotas.append(None if planned is None else [int(q) if float(q).is_integer() else float(q) for q in planned])
        if planned is not None:
            env.unwrapped.set_quotas(quotas[-1])  # type: ignore[attr-defined]
        obs, _, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated:
            break
    env.close()  # (live mode: stops the servers)
    if env.unwrapped.settings.recorded() != settings:  # type: ignore[attr-defined]
        raise RuntimeError(
            f"agent {getattr(agent, 'name', agent)!r} changed the environment's settings; its episode is void"
        )
    # The episode is the source trace from second trace_start_s (the whole source, or a window of it).
    source = env.unwrapped.source  # type: ignore[attr-defined]
    offset = int(reset_info["trace_start_s"]) - source.start_s
    arrivals = source.arrivals[offset : offset + len(infos) * int(settings["interval_s"])]
    return Played(infos, actions, quotas, settings, decision_s, fallbacks, reset_info, arrivals)


# The P99 latency SLO holds over a stretch of time where at most this share of its requests were
# late (over the SLO) or dropped.
SLO_MET_LATE_SHARE = 0.01


def episode_metrics(infos: list[dict[str, Any]], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The metric columns of a row from the per-step infos and the env's recorded settings (the one
    place they are computed). A reconfiguration is a step whose deployment differs from the one
    before it; before the first step runs the starting deployment (``initial_cores`` or nothing).
    ``window_violation_pct``: the share of 5 s windows (with completions) whose P99 exceeds the
    SLO, as the original experiments recorded latency; the request-level simulator only (NaN on
    the fast one). ``intervals_slo_met_pct``: the share of decision intervals with arrivals in which
    the P99 SLO held (at most ``SLO_MET_LATE_SHARE`` of their requests late or dropped; 100 where
    none had arrivals)."""
    arrivals = sum(i["arrivals"] for i in infos)
    busy = [i for i in infos if i["arrivals"] > 0]
    met = sum(i["violated"] <= SLO_MET_LATE_SHARE * i["arrivals"] for i in busy)
    served_accuracy = sum(i["aa_effective"] * i["arrivals"] for i in infos)
    start = settings.get("initial_cores") or [0] * len(infos[0]["replicas"])
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
        "intervals_slo_met_pct": 100 * met / len(busy) if busy else 100.0,
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


def env_kwargs_of(env_settings: Mapping[str, Any], trace_folders: Sequence[Path] = ()) -> tuple[dict[str, Any], int]:
    """The env's keyword arguments and the seed of an episode's recorded settings. A trace of one's
    own is found by its content digest (``trace_sha256``): at its recorded path if the file there
    still has that content, else as ``<digest>.txt`` in one of ``trace_folders`` (where the
    leaderboard keeps traces given as arrays); a ``ValueError`` says which when neither holds it
    (an edited file is named as such)."""
    settings = dict(env_settings)
    seed = settings.pop("seed")
    settings.pop("sim_version", None)
    digest = settings.pop("trace_sha256", None)
    if settings.get("initial_cores") is not None:
        settings["initial_cores"] = tuple(settings["initial_cores"])
    if digest is not None:
        settings["trace"] = find_trace(settings, digest, trace_folders)
    return settings, seed


def find_trace(settings: Mapping[str, Any], digest: str, trace_folders: Sequence[Path]) -> str:
    """The file holding the recorded trace (see ``env_kwargs_of``)."""
    recorded = str(settings.get("trace"))
    candidates = [Path(recorded)] if recorded != "array" else []
    candidates += [Path(folder) / f"{digest}.txt" for folder in trace_folders]
    candidates = list(dict.fromkeys(path.resolve() for path in candidates))
    found_other = []
    column, resolution_s = settings.get("trace_column"), settings.get("trace_resolution_s", 1)
    for path in candidates:
        if not path.is_file():
            continue
        if trace_file_digest(path, column, resolution_s) == digest:
            return str(path)
        found_other.append(str(path))
    if found_other:
        raise ValueError(
            f"trace {', '.join(found_other)} has other content than the row recorded (sha256 {digest[:12]}...): "
            "the file was edited or replaced"
        )
    where = [recorded] if recorded != "array" else []
    where += [str(Path(folder) / f"{digest}.txt") for folder in trace_folders]
    raise ValueError(f"the row's trace (sha256 {digest[:12]}...) is not at {' or '.join(where) or 'any path'}")


def replay(
    env_settings: Mapping[str, Any],
    actions: list[Any],
    quotas: list[Any] | None = None,
    trace_folders: Sequence[Path] = (),
) -> list[dict[str, Any]]:
    """Re-run an episode from its recorded settings, actions and quotas; the per-step infos.
    ``trace_folders``: where else to look for a trace of one's own (``env_kwargs_of``)."""
    settings, seed = env_kwargs_of(env_settings, trace_folders)
    env = gym.make("InfAdapter-v0", **settings)
    env.reset(seed=seed)
    infos = []
    for k, action in enumerate(actions):
        if quotas and quotas[k] is not None:
            env.unwrapped.set_quotas(quotas[k])  # type: ignore[attr-defined]
        _, _, _, _, info = env.step(np.asarray(action))
        infos.append(info)
    return infos
