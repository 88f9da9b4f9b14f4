"""A leaderboard sweep: every (contender, beta, scenario, seed) of a protocol, run on local
processes, in this process, or on Ray; rows appended to the CSV as they finish, so that an
interrupted sweep keeps them and the same call resumes it.

Agents registered in this process (``agent_registry.register``, ``module:attribute`` specs,
entry points) go to every worker with the sweep: local workers are started fresh (the ``spawn``
start method: torch and threads do not survive ``fork`` well) and Ray workers are other processes,
so neither sees this process's registry otherwise. The registrations travel pickled with
cloudpickle (it comes with Ray), which sends a factory defined in ``__main__`` or a notebook by
value; without cloudpickle they travel with ``pickle``, which sends such a factory only by the name
of an importable module. Local workers die with the sweep's process, even one killed by SIGKILL
(Linux: ``PR_SET_PDEATHSIG``; elsewhere each worker watches its parent's pid).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from infadapter_env.core import agent_registry
from infadapter_env.core.settings import EnvSettings
from infadapter_env.leaderboard.episode import SWEEP_SETTINGS, Task, contender, run_task, task_env_kwargs
from infadapter_env.leaderboard.protocol import Protocol, get_protocol
from infadapter_env.leaderboard.store import (
    CSV_NAME,
    TRACES_FOLDER,
    ResultsError,
    append,
    read_rows,
    rewrite,
    row_key,
    to_frame,
)
from infadapter_env.parallel import ray_results, ray_session
from infadapter_env.provenance import git_commit

BACKENDS = ("local", "serial", "ray")


class SweepError(ValueError):
    """A sweep that cannot start: an unknown agent, a spec that does not load, env settings the env
    refuses (reported as one line, not a traceback)."""


def run_sweep(
    protocol: str,
    agents: Sequence[str],
    scenarios: Sequence[str],
    betas: Sequence[float],
    seeds: Sequence[int],
    out: Path,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    log: Any = print,
    env: Mapping[str, Any] | None = None,
    reuse: bool = True,
) -> pd.DataFrame:
    """Run the missing rows of the sweep into ``out/leaderboard.csv`` and return the sweep's rows.
    ``agents``: contender labels, registered names or ``module:attribute`` specs (see
    ``resolve_agents``); ``env``: settings of ``SWEEP_SETTINGS`` for every episode; ``reuse``: no
    episode played twice (``plan_tasks``; the rows are the same either way).

    ``KeyboardInterrupt`` propagates after the finished rows are saved."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    chosen = get_protocol(protocol)  # a clear error for an unknown name
    labels = resolve_agents(chosen, agents, log)
    overrides = kept_trace(check_overrides(chosen, labels, scenarios, env or {}), out)
    if overrides.get("profile") is not None or overrides.get("variants") is not None:
        labels = agents_for_world(chosen, labels, scenarios[0], overrides, asked=bool(agents), log=log)
    path = out / CSV_NAME
    set_aside_other_physics(path, log)
    rows, dropped = read_rows(path)
    others = sorted({row["protocol"] for row in rows} - {protocol})
    if others:
        raise ResultsError(
            f"{path} holds rows of protocol {', '.join(others)}; one folder holds one protocol: choose another --out"
        )
    check_folder_settings(path, rows, chosen, overrides)
    if dropped:
        log(f"dropped {dropped} half-written, edited or duplicate row(s) of {path}; they will be redone")
    rewrite(path, rows)
    done = {row_key(row) for row in rows}
    wanted = [(protocol, a, float(b), s, int(seed)) for b in betas for s in scenarios for seed in seeds for a in labels]
    tasks = plan_tasks(
        [key for key in wanted if key not in done],
        *agent_traits(chosen, labels, scenarios[0], overrides),
        overrides,
        reuse,
    )
    if done:
        log(f"resuming: {len(wanted) - len(tasks)} of {len(wanted)} rows already in {path}")
    with tqdm(total=sum(t.rows for t in tasks), desc="leaderboard", unit="row", file=sys.stderr) as bar:
        for row in execute(tasks, backend, workers, address):
            append(path, row)
            bar.update()
    all_rows, _ = read_rows(path)
    wanted_keys = set(wanted)
    return to_frame([row for row in all_rows if row_key(row) in wanted_keys])


def agent_traits(
    protocol: Protocol, labels: Sequence[str], scenario: str, overrides: Mapping[str, Any]
) -> tuple[set[str], set[str]]:
    """The contenders whose agent does not read the objective's weights (``uses_weights`` False),
    and those whose decisions do not depend on the arrival seed: the agent declares it
    (``seed_independent``) and the seed does not move the counts it reads in the contender's env
    (``EnvSettings.seed_moves_counts``: it does under the original load generator's arrivals)."""
    weightless, seed_independent = set(), set()
    for label in labels:
        playing = contender(protocol, label)
        try:
            agent = agent_registry.make(playing.agent, **playing.options)
        except Exception as exc:  # a factory of one's own may raise anything
            raise SweepError(f"agent {label!r}: making it failed: {type(exc).__name__}: {exc}") from None
        if not getattr(agent, "uses_weights", True):
            weightless.add(label)
        if getattr(agent, "seed_independent", False):
            kwargs = task_env_kwargs(Task(protocol.name, label, 0.05, scenario, 0, tuple(overrides.items())))
            if not EnvSettings.from_kwargs(**kwargs).seed_moves_counts:
                seed_independent.add(label)
    return weightless, seed_independent


def plan_tasks(
    keys: Sequence[tuple[str, str, float, str, int]],
    weightless: set[str],
    seed_independent: set[str],
    overrides: Mapping[str, Any],
    reuse: bool = True,
) -> list[Task]:
    """The tasks of the missing rows, no episode played twice: a seed-independent contender's
    missing rows of one scenario are one task per set of seeds (played at the first, replayed at
    the others, each distinct decision sequence simulated once per seed); a weightless contender's
    missing betas of one (scenario, seed) are one task (one episode, scored at each beta); any
    other row is a task of its own. ``reuse=False``: every row a task of its own (the check that
    reuse changes no row)."""
    settings, commit = tuple(overrides.items()), git_commit()  # the commit: read once for the sweep
    if not reuse:
        return [Task(p, a, b, s, seed, settings=settings, commit=commit) for p, a, b, s, seed in keys]
    tasks: list[Task] = []
    per_seed: dict[tuple[str, str, str, int], list[float]] = {}
    per_scenario: dict[tuple[str, str, str], dict[float, list[int]]] = {}
    for protocol, agent, beta, scenario, seed in keys:
        if agent in seed_independent:
            per_scenario.setdefault((protocol, agent, scenario), {}).setdefault(beta, []).append(seed)
        elif agent in weightless:
            per_seed.setdefault((protocol, agent, scenario, seed), []).append(beta)
        else:
            tasks.append(Task(protocol, agent, beta, scenario, seed, settings=settings, commit=commit))
    for (protocol, agent, scenario, seed), betas in per_seed.items():
        tasks.append(Task(protocol, agent, betas[0], scenario, seed, settings, tuple(betas[1:]), commit))
    for (protocol, agent, scenario), seeds_of in per_scenario.items():
        by_seeds: dict[tuple[int, ...], list[float]] = {}
        for beta, seed_list in seeds_of.items():
            by_seeds.setdefault(tuple(seed_list), []).append(beta)
        for seeds, betas in by_seeds.items():
            first = Task(protocol, agent, betas[0], scenario, seeds[0], settings, tuple(betas[1:]), commit)
            tasks.append(replace(first, replayed_seeds=seeds[1:]))
    return tasks


def resolve_agents(protocol: str | Protocol, agents: Sequence[str], log: Any = print) -> list[str]:
    """The row labels of ``agents`` (default: every contender of the protocol): a contender's label,
    or any agent ``agent_registry.resolve`` knows (registered, an entry point, a spec, which is
    loaded here); a ``SweepError`` naming the problem for a name that is none of these.

    A bare agent name that a protocol plays only as contenders with their own settings (``vpa-50``
    under ``paper-2023``, whose contenders are ``vpa-50/throttled`` and ``vpa-50/busy``) would play
    with the registry's defaults and read as the protocol's contender: it is resolved to that
    contender when there is one (said through ``log``), and refused, naming them, when there are several."""

    chosen = get_protocol(protocol)
    by_label = chosen.contenders()
    contenders = list(by_label)
    labels = []
    for name in agents:
        if name in contenders:
            labels.append(name)
            continue
        playing_as = [label for label, c in by_label.items() if c.agent == name]
        if len(playing_as) == 1:
            log(f"agent {name!r}: protocol {chosen.name} plays it as its contender {playing_as[0]!r}")
            labels.append(playing_as[0])
            continue
        if playing_as:
            raise SweepError(
                f"agent {name!r}: protocol {chosen.name} plays it only with its own settings, as "
                f"{', '.join(playing_as)}: name one of these; the protocol's contenders: {', '.join(contenders)}"
            )
        try:
            labels.append(agent_registry.resolve(name))
        except ValueError as exc:
            if not str(exc).startswith("unknown agent"):
                raise SweepError(str(exc)) from None
            others = [n for n in agent_registry.names() if n not in contenders]
            valid = ", ".join(contenders) + (f"; other registered agents: {', '.join(others)}" if others else "")
            raise SweepError(
                f"unknown agent {name!r}; valid agents: {valid} (or a module:attribute spec naming a factory)"
            ) from None
    labels = list(dict.fromkeys(labels)) or contenders
    for label in labels:  # an entry point that does not load is named here, not in a worker
        try:
            agent_registry.resolve(contender(chosen, label).agent)
        except ValueError as exc:
            raise SweepError(str(exc)) from None
    return labels


def agents_for_world(
    protocol: Protocol, labels: Sequence[str], scenario: str, overrides: Mapping[str, Any], asked: bool, log: Any
) -> list[str]:
    """The contenders that can act in the world of ``overrides`` (a profile or variants of one's
    own), each tried on one reset: one that refuses the world (``UnsupportedWorld``, e.g. ``vpa-18``
    where no variant has arch 18) is skipped with a line in the log, or, when ``asked`` for by
    name, is a ``SweepError``."""
    import gymnasium as gym

    from infadapter_env.world.profiles import UnsupportedWorld

    kept = []
    for label in labels:
        playing = contender(protocol, label)
        task = Task(protocol.name, label, 0.05, scenario, 0, settings=tuple(overrides.items()))
        _, info = gym.make("InfAdapter-v0", **task_env_kwargs(task)).reset(seed=0)
        try:
            agent_registry.make(playing.agent, **playing.options).reset(info)
        except UnsupportedWorld as exc:
            if asked:
                raise SweepError(f"agent {label!r} cannot play in this world: {exc}") from None
            log(f"skipped {label}: {exc}")
            continue
        kept.append(label)
    if not kept:
        raise SweepError("no contender can play in this world; name agents of your own with --agents")
    return kept


def kept_trace(overrides: dict[str, Any], out: Path) -> dict[str, Any]:
    """``overrides`` with a trace given as an array kept in a file beside the results
    (``out/traces/<content digest>.txt``, the counts as given), so that every row replays from its
    recorded settings; a trace file or a named ``Trace`` is left as it is."""
    from infadapter_env.world.traces import Trace, from_array, trace_digest, write_counts

    trace = overrides.get("trace")
    if trace is None or isinstance(trace, str | Path | Trace):
        return overrides
    digest = trace_digest(from_array(trace, resolution_s=overrides.get("trace_resolution_s", 1)))
    return overrides | {"trace": str(write_counts(trace, out / TRACES_FOLDER, digest).resolve())}


def check_overrides(
    protocol: Protocol, agents: Sequence[str], scenarios: Sequence[str], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """``overrides`` (settings of ``SWEEP_SETTINGS``, None meaning not given) checked by building the
    settings of every (agent, scenario); with a file (trace, profile, variants) the env itself is built
    once per scenario, so that a trace too short for a scenario's window is named before the sweep."""
    import gymnasium as gym

    from infadapter_env.core.settings import EnvSettings

    given = {k: v for k, v in overrides.items() if v is not None}
    fixed = sorted(set(given) - set(SWEEP_SETTINGS))
    if fixed:
        raise SweepError(
            f"env setting(s) {', '.join(fixed)} cannot be overridden in a sweep; valid: {', '.join(SWEEP_SETTINGS)}"
        )
    if not given:
        return {}
    unknown = [s for s in scenarios if s not in protocol.scenarios]
    if unknown:
        raise SweepError(f"unknown scenario(s) {unknown}; valid scenarios: {', '.join(protocol.scenarios)}")
    for scenario in scenarios:
        built = False
        for label in agents:
            kwargs = task_env_kwargs(Task(protocol.name, label, 0.0, scenario, 0, tuple(given.items())))
            try:
                if not built and {"trace", "profile", "variants"} & set(given):
                    gym.make("InfAdapter-v0", **kwargs).close()
                    built = True
                else:
                    EnvSettings.from_kwargs(**kwargs)
            except ValueError as exc:
                settings = ", ".join(f"{k}={v!r}" for k, v in given.items())
                raise SweepError(f"{settings} on scenario {scenario!r} (agent {label!r}): {exc}") from None
    return given


def set_aside_other_physics(path: Path, log: Any = print) -> None:
    """Rows of another simulation physics cannot be mixed with this version's, nor replayed by it: a
    ``leaderboard.csv`` that holds any is renamed ``leaderboard.<its versions>.csv`` beside (kept,
    not deleted), and the sweep starts afresh."""
    from infadapter_env.core.scalar_env import SIM_VERSION
    from infadapter_env.leaderboard.episode import recorded_physics

    rows, _ = read_rows(path)
    versions = set()
    for row in rows:
        try:
            versions.add(recorded_physics(json.loads(row["env_settings"])))
        except (ValueError, KeyError):
            continue  # validate reports it
    old = sorted(versions - {SIM_VERSION})
    if not old:
        return
    aside, n = path.with_name(f"{path.stem}.{'-'.join(old)}{path.suffix}"), 1
    while aside.exists():  # an earlier set-aside is kept too
        aside, n = path.with_name(f"{path.stem}.{'-'.join(old)}.{n}{path.suffix}"), n + 1
    path.rename(aside)
    log(
        f"{path} held rows of simulation physics {', '.join(old)} (this version simulates {SIM_VERSION}): "
        f"moved to {aside}; playing the sweep afresh"
    )


def check_folder_settings(
    path: Path, rows: Sequence[Mapping[str, str]], protocol: Protocol, overrides: Mapping[str, Any]
) -> None:
    """One folder holds one set of env settings: the rows already there must have been played with
    the sweep's values of ``SWEEP_SETTINGS`` (recorded as the env records them), else resuming would
    mix them."""
    if not rows:
        return
    from infadapter_env.core.settings import EnvSettings

    reference = EnvSettings.from_kwargs(**{**protocol.env, **overrides}).recorded()
    expected = {k: json.loads(json.dumps(reference[k], default=str)) for k in SWEEP_SETTINGS if k in reference}
    for row in rows:
        try:
            recorded = json.loads(row["env_settings"])
        except ValueError:
            continue  # validate reports it
        # A setting a row does not record is newer than the row, which was played with its default.
        differ = [k for k, v in expected.items() if (k in recorded or k in overrides) and recorded.get(k) != v]
        if differ:
            theirs = ", ".join(f"{k}={recorded.get(k)!r}" for k in differ)
            ours = ", ".join(f"{k}={expected[k]!r}" for k in differ)
            raise ResultsError(
                f"{path} holds rows played with {theirs} (this sweep: {ours}); one folder holds one set of env "
                "settings: choose another --out"
            )


def execute(tasks: list[Task], backend: str, workers: int, address: str | None) -> Iterator[dict[str, Any]]:
    """Rows of ``tasks`` in the order they finish."""
    if backend == "serial" or (workers <= 1 and backend == "local"):
        for task in tasks:
            yield from run_task(task)
    elif backend == "local":
        yield from _execute_processes(tasks, workers, _pack_registrations())
    else:
        yield from _execute_ray(tasks, workers, address, _pack_registrations())


def _pack_registrations() -> bytes | None:
    """This process's own agent registrations, pickled for the workers (None: there are none)."""

    registered = agent_registry.registrations()
    if not registered:
        return None
    try:
        import cloudpickle as pickler
    except ImportError:
        pickler = pickle  # type: ignore[assignment]
    try:
        return pickler.dumps(registered)
    except Exception:
        for name, factory in registered.items():
            try:
                pickler.dumps(factory)
            except Exception as exc:
                hint = "" if pickler is not pickle else "; install cloudpickle to send it by value"
                raise SweepError(
                    f"agent {name!r}: its factory {factory!r} cannot be sent to the worker processes "
                    f"({type(exc).__name__}: {exc}){hint}; or define it in an importable module, "
                    "or use --backend serial"
                ) from None
        raise


def _install(registrations: bytes | None) -> None:
    if registrations:
        agent_registry.install(pickle.loads(registrations))


def _start_worker(parent_pid: int, registrations: bytes | None) -> None:
    """A local worker's set-up: die with the sweep's process, know its agents."""
    _die_with_parent(parent_pid)
    _install(registrations)


def _die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` ends, however it ends (SIGKILL runs no clean-up, and a
    worker waiting on its task queue would wait for ever)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        try:
            watch = ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL) != 0
        except (OSError, AttributeError):
            watch = True
    else:
        watch = True
    if os.getppid() != parent_pid:  # it ended before the signal was asked for
        os._exit(1)
    if watch:

        def poll() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=poll, name="die-with-parent", daemon=True).start()


def _execute_processes(tasks: list[Task], workers: int, registrations: bytes | None) -> Iterator[dict[str, Any]]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # torch and threads do not survive fork well
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(), registrations)
    ) as pool:
        pending = {pool.submit(run_task, task) for task in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from future.result()
        finally:
            for future in pending:
                future.cancel()


def _run_registered(registrations: bytes | None, task: Task) -> list[dict[str, Any]]:
    """A Ray task: the rows of ``task`` in a worker that knows the sweep's agents."""
    _install(registrations)
    return run_task(task)


def _execute_ray(
    tasks: list[Task], workers: int, address: str | None, registrations: bytes | None
) -> Iterator[dict[str, Any]]:
    with ray_session(workers, address) as ray:
        remote = ray.remote(_run_registered)
        shipped = ray.put(registrations)
        for rows in ray_results(ray, [remote.remote(shipped, task) for task in tasks]):
            yield from rows
