"""One leaderboard episode: play it (``core.rollout``), score it, record it as a row, check it.

A row holds the episode's metrics (``episode_metrics``, the one place they are computed), its
action sequence and the dispatcher quotas it set, the env settings (with the physics version),
the contender and its options, the package version, the git commit, and a checksum of all of it
(``row_digest``) so that a half-written or edited row is detected. ``check_row`` replays a row
from what it recorded (``core.rollout.replay``).
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import infadapter_env
from infadapter_env.core import agent_registry
from infadapter_env.core.objective import Weights
from infadapter_env.core.pipeline import reweighted_info
from infadapter_env.core.rollout import Played, env_kwargs_of, episode_metrics, play_steps, replay
from infadapter_env.core.scalar_env import SIM_VERSION
from infadapter_env.core.settings import EnvSettings
from infadapter_env.leaderboard.protocol import PROTOCOLS, Contender, Protocol, env_kwargs, get_protocol
from infadapter_env.provenance import git_commit

# Columns that are measurements of this machine, not functions of the recorded inputs.
TIMING_COLUMNS = ("decision_ms_mean", "decision_ms_p99", "wall_s")
METRIC_COLUMNS = (
    "objective",
    "slo_violation_pct",
    "window_violation_pct",
    "intervals_slo_met_pct",
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


# The env settings a sweep may set for all its episodes (the protocol fixes the others); they are
# recorded in every row's env_settings. ``trace``, ``profile`` and ``variants`` are paths to files.
SWEEP_SETTINGS = (
    "slo_ms",
    "budget_cores",
    "interval_s",
    "server_speed",
    "trace",
    "trace_column",
    "trace_resolution_s",
    "profile",
    "variants",
)


@dataclass(frozen=True)
class Task:
    """The rows of one agent's episodes to compute. ``settings``: the (setting, value) pairs a sweep
    overrides in every episode. ``rescored_betas``: more betas, scored from the episodes of
    ``beta`` (an agent that does not read the weights) or played from the same decisions where
    they coincide (see ``replayed_seeds``). ``replayed_seeds``: more seeds at which the decisions
    played at ``seed`` are replayed (an agent whose decisions do not depend on the arrival seed,
    ``seed_independent``); each distinct decision sequence is simulated once per seed and scored at
    every beta that produced it. The task's rows: every beta of ``betas`` at every seed of ``seeds``."""

    protocol: str
    agent: str
    beta: float
    scenario: str
    seed: int
    settings: tuple[tuple[str, Any], ...] = ()
    rescored_betas: tuple[float, ...] = ()
    commit: str = ""  # the source's commit, read once per sweep (empty: read for each row)
    replayed_seeds: tuple[int, ...] = ()

    @property
    def betas(self) -> tuple[float, ...]:
        return (self.beta, *self.rescored_betas)

    @property
    def seeds(self) -> tuple[int, ...]:
        return (self.seed, *self.replayed_seeds)

    @property
    def rows(self) -> int:
        return len(self.betas) * len(self.seeds)

    def describe(self) -> str:
        return f"agent {self.agent!r}, scenario {self.scenario!r}, seed {self.seed}, beta {self.beta:g}"


def contender(protocol: str | Protocol, label: str) -> Contender:
    """A protocol's contender by its label; any other registered agent (one's own, a plugin, a
    ``module:attribute`` spec) plays with its default options and starts as the protocol starts an
    agent given to ``evaluate``."""
    chosen = get_protocol(protocol)
    return chosen.contenders().get(label) or Contender(label, label, {}, chosen.submitted_env)


def task_env_kwargs(task: Task) -> dict[str, Any]:
    """The env settings of a task's episode: the protocol's for its contender, then the sweep's overrides."""
    protocol = get_protocol(task.protocol)
    scenario = protocol.scenarios[task.scenario]
    return env_kwargs(scenario, task.beta, protocol, contender(protocol, task.agent)) | dict(task.settings)


def run_task(task: Task) -> list[dict[str, Any]]:
    """Play one episode of a protocol's contender and return its leaderboard row (one per beta of
    ``task.betas``: the episode scored at each).

    Torch runs on one thread: parallel workers would otherwise oversubscribe the cores and the
    measured decision times would mostly measure that contention."""
    try:
        import torch
    except ImportError:  # without the learned extra nothing here runs torch
        pass
    else:
        torch.set_num_threads(1)
    protocol = get_protocol(task.protocol)
    playing = contender(protocol, task.agent)

    try:
        agent = agent_registry.make(playing.agent, **playing.options)
    except Exception as exc:  # a factory of one's own may raise anything: named with its episode
        raise EpisodeError(f"{task.describe()}: making the agent failed: {type(exc).__name__}: {exc}") from exc
    options = {"agent": playing.agent, **playing.options}
    found_at = agent_registry.source(playing.agent)
    if found_at is not None:  # an agent of one's own: where validate --rerun-agents imports it from
        options["agent_source"] = found_at
    kwargs = task_env_kwargs(task)
    if task.replayed_seeds and (
        not getattr(agent, "seed_independent", False) or EnvSettings.from_kwargs(**kwargs).seed_moves_counts
    ):
        raise ValueError(f"agent {task.agent!r} may decide otherwise at another seed: its decisions cannot be replayed")
    try:
        return episode_rows(task, agent, kwargs, options, protocol.hold_s)
    except Exception as exc:  # an agent's bad action or crash, named with the episode it happened in
        raise EpisodeError(f"{task.describe()}: {type(exc).__name__}: {exc}") from exc


class EpisodeError(RuntimeError):
    """An episode of a sweep that failed, named by its agent, scenario, seed and beta."""


def episode_row(
    task: Task, agent: Any, kwargs: Mapping[str, Any], options: Mapping[str, Any], hold_s: int = 0
) -> dict[str, Any]:
    """Play ``agent`` in ``InfAdapter-v0(**kwargs)`` and return the row of ``task``."""
    return episode_rows(replace(task, rescored_betas=()), agent, kwargs, options, hold_s)[0]


def episode_rows(
    task: Task, agent: Any, kwargs: Mapping[str, Any], options: Mapping[str, Any], hold_s: int = 0
) -> list[dict[str, Any]]:
    """Play ``agent`` in ``InfAdapter-v0(**kwargs)`` and return the rows of ``task``, beta by beta
    and seed by seed. The agent plays at ``task.seed``, at every beta if it reads the weights, else
    once (scored at each beta). At the replayed seeds its decisions are replayed, each distinct
    decision sequence once per seed, and scored at every beta that made it. A replayed row carries
    the decision times and fallbacks of the play it replays, and its own simulation's wall time."""
    decided_at = task.betas if getattr(agent, "uses_weights", True) else (task.beta,)
    plays: dict[float, Played] = {}
    play_s: dict[float, float] = {}
    for beta in decided_at:
        started = time.perf_counter()
        plays[beta] = play_steps(agent, dict(kwargs) | {"beta": beta}, task.seed, hold_s)
        play_s[beta] = time.perf_counter() - started
    # each beta's decisions: its own play, or the one play of an agent that does not read the weights
    source = {beta: beta if beta in plays else task.beta for beta in task.betas}
    # (decisions, seed): the episode's infos, its wall time, and the beta they were scored at
    simulated: dict[tuple[str, int], tuple[list[dict[str, Any]], float, float]] = {}
    rows = []
    for beta in task.betas:
        played = plays[source[beta]]
        decisions = json.dumps([played.actions, played.quotas], separators=(",", ":"))
        for seed in task.seeds:
            if seed == task.seed:
                infos, wall_s, scored_at = played.infos, play_s[source[beta]], played.settings["beta"]
            else:
                if (decisions, seed) not in simulated:
                    started = time.perf_counter()
                    replayed = replay(played.settings | {"seed": seed}, played.actions, played.quotas)
                    simulated[decisions, seed] = replayed, time.perf_counter() - started, played.settings["beta"]
                infos, wall_s, scored_at = simulated[decisions, seed]
            settings = played.settings | {"beta": beta}
            if beta != scored_at:
                weights = Weights(settings["alpha"], beta, settings["gamma"])
                infos = [reweighted_info(info, weights) for info in infos]
            metrics = episode_metrics(infos, settings)
            metrics |= {"fallbacks": played.fallbacks, "decision_s": played.decision_s}
            one = replace(task, beta=beta, seed=seed)
            rows.append(_row(one, metrics, played.actions, played.quotas, settings, options, wall_s))
    return rows


def _row(
    task: Task,
    metrics: Mapping[str, Any],
    actions: list,
    quotas: list,
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
    wall_s: float,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "protocol": task.protocol,
        "agent": task.agent,
        "beta": task.beta,
        "scenario": task.scenario,
        "seed": task.seed,
        **{k: v for k, v in metrics.items() if k != "decision_s"},
        "decision_ms_mean": 1e3 * statistics.fmean(metrics["decision_s"]),
        "decision_ms_p99": 1e3 * float(np.percentile(metrics["decision_s"], 99)),
        "wall_s": wall_s,
        "actions": json.dumps(actions, separators=(",", ":")),
        "quotas": json.dumps(quotas, separators=(",", ":")) if any(q is not None for q in quotas) else "",
        "env_settings": json.dumps(dict(settings) | {"seed": task.seed, "sim_version": SIM_VERSION}, sort_keys=True),
        "agent_options": json.dumps(dict(options), sort_keys=True, default=str),
        "package_version": infadapter_env.__version__,
        "git_commit": task.commit or git_commit(),
    }
    row = {k: round(v, 12) if isinstance(v, float) else v for k, v in row.items()}
    row["row_sha256"] = row_digest(row)
    return row


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


REPLAYED_COLUMNS = tuple(c for c in METRIC_COLUMNS if c != "fallbacks")


def recorded_physics(env_settings: Mapping[str, Any]) -> str:
    """The simulation physics version a row was played with (rows of physics v0 recorded none)."""
    return str(env_settings.get("sim_version", "v0"))


def other_physics_problem(recorded_version: str) -> str:
    """What ``validate`` says of rows played with another physics version than this one's."""
    return (
        f"recorded with simulation physics {recorded_version}; this version of the benchmark simulates "
        f"{SIM_VERSION} and cannot replay it (re-run the leaderboard)"
    )


def check_row(
    row: dict[str, str], replays: dict[str, tuple[float, list]] | None = None, trace_folders: Sequence[Path] = ()
) -> list[str]:
    """The problems of one row as written (empty if it is valid): its checksum, its key columns
    against its recorded settings (``key_problems``), its physics version, and every replayed metric
    against the recorded one (within 1e-9; timing columns are measurements and ``fallbacks`` comes
    from the agent, both covered by the checksum only). ``replays``: a cache shared by the rows of
    one file; rows that differ only in beta (an agent without weights, scored at every beta) replay
    their episode once and are rescored (``pipeline.reweighted_info``). ``trace_folders``: where
    a trace of one's own may be kept besides its recorded path (``rollout.env_kwargs_of``)."""
    problems = []
    if row_digest(row) != row["row_sha256"]:
        problems.append("checksum does not match the row's content")
    problems += key_problems(row)
    try:
        settings = json.loads(row["env_settings"])
        recorded_version = recorded_physics(settings)
        if recorded_version != SIM_VERSION:
            return [*problems, other_physics_problem(recorded_version)]
        infos = _replayed(settings, json.loads(row["actions"]), row_quotas(row), replays, trace_folders)
    except (ValueError, KeyError, TypeError) as exc:
        return [*problems, f"cannot replay: {exc}"]
    metrics = episode_metrics(infos, settings)
    for column in REPLAYED_COLUMNS:
        recorded, replayed = float(row[column]), float(metrics[column])
        if math.isnan(recorded) and math.isnan(replayed):  # not measured by this simulator
            continue
        if not math.isclose(recorded, replayed, rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"{column}: recorded {recorded!r}, replayed {replayed!r}")
    return problems


REPLAY_CACHE_SIZE = 64


def _replayed(
    settings: dict[str, Any],
    actions: list,
    quotas: list | None,
    cache: dict[str, tuple[float, list]] | None,
    trace_folders: Sequence[Path] = (),
) -> list[dict[str, Any]]:
    if cache is None:
        return replay(settings, actions, quotas, trace_folders)
    key = json.dumps([{k: v for k, v in settings.items() if k != "beta"}, actions, quotas], sort_keys=True)
    if key not in cache:
        if len(cache) >= REPLAY_CACHE_SIZE:  # rescored rows sit together in a file: the oldest go first
            cache.pop(next(iter(cache)))
        cache[key] = (settings["beta"], replay(settings, actions, quotas, trace_folders))
    beta, infos = cache[key]
    if beta == settings["beta"]:
        return infos
    weights = Weights(settings["alpha"], settings["beta"], settings["gamma"])
    return [reweighted_info(info, weights) for info in infos]


def key_problems(row: Mapping[str, str]) -> list[str]:
    """Where a row's key columns (protocol, agent, beta, scenario, seed) disagree with what it recorded:
    beta and seed against its env settings; for a protocol of ``PROTOCOLS``, also every setting the
    protocol gives that contender on that scenario (the sweep's ``SWEEP_SETTINGS`` aside), and the agent
    its options name. A row of a protocol of one's own (``evaluate``) is checked for beta and seed."""
    try:
        settings = json.loads(row["env_settings"])
        options = json.loads(row["agent_options"])
        beta, seed = float(row["beta"]), int(row["seed"])
    except (ValueError, KeyError, TypeError) as exc:
        return [f"unreadable key columns or settings: {exc}"]
    problems = []
    if not isinstance(settings.get("beta"), int | float) or not math.isclose(beta, settings["beta"], rel_tol=1e-9):
        problems.append(f"beta column {beta!r} but the recorded settings have beta {settings.get('beta')!r}")
    if settings.get("seed") != seed:
        problems.append(f"seed column {seed} but the recorded settings have seed {settings.get('seed')!r}")
    protocol = PROTOCOLS.get(row["protocol"])
    if protocol is None:
        return problems
    scenario = protocol.scenarios.get(row["scenario"])
    if scenario is None:
        valid = ", ".join(protocol.scenarios)
        return [*problems, f"scenario column {row['scenario']!r} is not a scenario of {protocol.name} ({valid})"]
    playing = contender(protocol, row["agent"])
    if options.get("agent") != playing.agent:
        problems.append(
            f"agent column {row['agent']!r} (agent {playing.agent!r} in protocol {protocol.name}) but the recorded "
            f"options name agent {options.get('agent')!r}"
        )
    expected = json.loads(json.dumps(env_kwargs(scenario, beta, protocol, playing), default=str))
    for key, value in expected.items():
        if key in SWEEP_SETTINGS or key == "beta" or settings.get(key) == value:
            continue
        if key in scenario.env_kwargs:
            where = f"scenario column {scenario.name!r} ({protocol.name}: {key}={value!r})"
        else:
            where = f"protocol column {protocol.name!r} ({row['agent']}: {key}={value!r})"
        problems.append(f"{where} but the recorded settings have {key}={settings.get(key)!r}")
    return problems


def rerun_problems(
    row: Mapping[str, str], cache: dict[str, tuple[list, list, int]], trace_folders: Sequence[Path] = ()
) -> list[str]:
    """Where the agent a row names does not play what the row recorded: the agent is made again
    from the row's options (built-in, registered or a plugin, as ``agent_registry`` finds it) and
    plays the row's episode (its recorded env settings and seed, its protocol's hold); its actions,
    quotas and fallbacks must equal the recorded ones. Agents are deterministic given the seed, so
    any difference means the row was not played by the agent it names (or the agent changed).
    ``cache``: the decisions (actions, quotas, fallbacks) of the episodes already played for the
    rows of one file (an agent that does not read the weights plays once for every beta)."""
    try:
        options = json.loads(row["agent_options"])
        name, found_at = options.pop("agent"), options.pop("agent_source", None)
        protocol = get_protocol(row["protocol"])
        kwargs, seed = env_kwargs_of(json.loads(row["env_settings"]), trace_folders)
        agent = agent_registry.make(found_at or name, **options)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"cannot re-run the agent: {exc}"]
    scored = {k: v for k, v in kwargs.items() if k != "beta" or getattr(agent, "uses_weights", True)}
    key = json.dumps([name, options, scored, seed], sort_keys=True, default=str)
    if key not in cache:
        if len(cache) >= REPLAY_CACHE_SIZE:  # a file's rows of one episode sit together: the oldest go first
            cache.pop(next(iter(cache)))
        try:
            played = play_steps(agent, kwargs, seed, protocol.hold_s)
        except Exception as exc:  # an agent of one's own may raise anything
            return [f"re-running agent {name!r} failed: {type(exc).__name__}: {exc}"]
        cache[key] = played.actions, played.quotas, played.fallbacks
    actions, quotas, fallbacks = cache[key]
    problems = []
    recorded_actions = json.loads(row["actions"])
    if actions != recorded_actions:
        step = next((k for k, (a, b) in enumerate(zip(actions, recorded_actions, strict=False)) if a != b), None)
        where = (
            f"from step {step + 1}" if step is not None else f"{len(actions)} steps, recorded {len(recorded_actions)}"
        )
        problems.append(f"re-running agent {name!r} gives other actions ({where})")
    recorded_quotas = row_quotas(row) or [None] * len(quotas)
    if any(q is not None for q in quotas) and quotas != recorded_quotas:
        problems.append(f"re-running agent {name!r} gives other dispatcher quotas")
    if fallbacks != int(float(row["fallbacks"])):
        problems.append(f"re-running agent {name!r} gives {fallbacks} fallbacks, recorded {row['fallbacks']}")
    return problems


def provenance_problems(row: Mapping[str, str]) -> list[str]:
    """Where a row's recorded package version or commit is not the running package's."""
    problems = []
    if row["package_version"] != infadapter_env.__version__:
        problems.append(
            f"package_version {row['package_version']!r}, running infadapter-gym {infadapter_env.__version__}"
        )
    running = git_commit()
    if row["git_commit"] != running:
        problems.append(f"git_commit {row['git_commit']!r}, running {running!r}")
    return problems
