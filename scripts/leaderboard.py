"""The benchmark's main job: every contender of a protocol on its scenarios over a sweep of beta.

    infadapter leaderboard                                       (or: make leaderboard)
    infadapter leaderboard --protocol paper-2023                 (the original experiment)
    infadapter leaderboard --agents infadapter vpa-50 --betas 0.05,0.1 --scenarios paper --backend ray
    infadapter leaderboard --agents ms+ mypkg.policies:make_agent --scenarios paper --trace my.csv --slo-ms 1000

Writes into ``--out`` (default ``results/leaderboard``, or ``results/<protocol>``):
``leaderboard.csv`` (one row per contender, beta, scenario and seed, with every metric, the action
sequence, the quotas, the settings, the version and the commit), ``summary.md`` (ranked per beta
by IQM with bootstrap CIs, Pareto fronts, the paper's headline compared) and figures
(``beta_sweep.png`` or ``paper_figure.png``, ``performance_profile.png``, ``pareto.png``,
``timeline_*.png``). Rows are appended as they finish: an interrupted sweep keeps them, and
re-running the same command resumes without duplicates; a half-written row is detected by its
checksum and redone. Killing the command (even with SIGKILL) ends its worker processes too.

Every list flag takes its values separated by commas, spaces or both (``--agents a,b``,
``--agents a b``, ``--seeds 0,1 2``).

``--agents`` takes the protocol's contenders and any other agent: one registered by
``infadapter_agents.register`` before the sweep (a script or notebook that calls ``main`` or
``run_sweep``), an installed entry point of group ``infadapter.agents``, or ``module:attribute``
naming a factory that returns an Agent (the module importable, or in the current folder; the row
label is the spec, or the factory's ``name``). Such an agent plays with its default options and
starts as the protocol starts an agent given to ``evaluate``. Every backend's workers get the
registrations made in this process (pickled by value with cloudpickle where the factory lives in
``__main__`` or a notebook).

``--slo-ms``, ``--budget-cores``, ``--interval-s``, ``--server-speed``, ``--trace``, ``--profile``
and ``--variants`` set the env settings of the same names for every episode (files as absolute paths, so the rows
validate from anywhere; with ``--trace`` the scenario ``paper`` plays the whole trace and a held-out
window needs a trace that long). Rows record them in ``env_settings``; one output folder holds one
set of them (a different set is refused: choose another ``--out``).

This module parses the arguments; the harness is the library ``infadapter_env.leaderboard``
(protocols in ``infadapter_env/leaderboard/protocol.py``, backends in ``sweep.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from infadapter_env.leaderboard.episode import EpisodeError
from infadapter_env.leaderboard.protocol import DEFAULT_BETAS, PROTOCOLS, get_protocol
from infadapter_env.leaderboard.store import CSV_NAME, ResultsError
from infadapter_env.leaderboard.summary import write_summary
from infadapter_env.leaderboard.sweep import BACKENDS, SweepError, resolve_agents, run_sweep
from infadapter_env.options import option
from infadapter_scripts.arguments import parse


@dataclass
class Args:
    """Run the InfAdapter-Gym leaderboard."""

    protocol: str = option("default", f"protocol: {', '.join(PROTOCOLS)} (infadapter_env/leaderboard/protocol.py)")
    out: str = option("", "output folder, created if missing (default: results/leaderboard or results/<protocol>)")
    agents: list[str] = option(
        [],
        "contenders to score: the protocol's, any registered agent (entry points of group infadapter.agents "
        "included), or module:attribute naming a factory that returns an Agent (default: every contender "
        "of the protocol)",
    )
    scenarios: list[str] = option([], "scenarios (default: the protocol's)")
    betas: list[float] = option(list(DEFAULT_BETAS), "beta values")
    seeds: list[int] = option([], "seeds passed to env.reset (default: the protocol's, 0-4)")
    slo_ms: int | None = option(None, "env setting slo_ms for every episode (default: the protocol's, 750)")
    budget_cores: int | None = option(None, "env setting budget_cores for every episode (default: the protocol's, 20)")
    interval_s: int | None = option(None, "env setting interval_s for every episode (default: the protocol's, 30)")
    server_speed: float | None = option(
        None, "env setting server_speed for every episode: every server's service rate times this (default 1.0)"
    )
    trace: str | None = option(None, "env setting trace: a file of per-second request counts (default: the scenario's)")
    trace_column: str | None = option(None, "with --trace: the CSV column holding the counts (needed if several)")
    trace_resolution_s: int | None = option(None, "with --trace: seconds per count (60: per-minute counts; default 1)")
    profile: str | None = option(None, "env setting profile: a capacity profile file (default: the shipped one)")
    variants: str | None = option(None, "env setting variants: a file of model variants (default: the shipped ones)")
    backend: str = option("local", f"one of {', '.join(BACKENDS)}: local processes, one process, or Ray")
    workers: int = option(os.cpu_count() or 1, "parallel workers (local and ray backends)")
    reuse: bool = option(True, "play no episode twice: decisions of seed-independent agents replayed (same rows)")
    address: str | None = option(None, "Ray cluster address (default: start a local Ray instance)")
    timeline_agent: str = option("infadapter", "agent drawn in the episode timeline figure")
    timeline_scenario: str = option("paper", "scenario drawn in the episode timeline figure")
    figures: bool = option(True, "draw the figures")


class UsageError(ValueError):
    """Bad command-line input; reported as one line, not a traceback."""


def check_betas(given: Sequence[float]) -> tuple[float, ...]:
    for value in given:
        if not 0 <= value < float("inf"):
            raise UsageError(f"--betas: {value} is not a finite number >= 0")
    return tuple(dict.fromkeys(given))


def check_names(kind: str, given: Sequence[str], valid: Sequence[str]) -> list[str]:
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise UsageError(f"unknown {kind} {', '.join(map(repr, unknown))}; valid {kind}s: {', '.join(valid)}")
    return list(dict.fromkeys(given)) or list(valid)


def env_overrides(args: Args) -> dict[str, object]:
    """The env settings given on the command line; files as absolute paths, so that workers in
    other folders (and ``infadapter validate`` run from elsewhere) find them."""
    overrides: dict[str, object] = {"slo_ms": args.slo_ms, "budget_cores": args.budget_cores}
    overrides["interval_s"], overrides["server_speed"] = args.interval_s, args.server_speed
    overrides["trace_column"], overrides["trace_resolution_s"] = args.trace_column, args.trace_resolution_s
    for setting in ("trace", "profile", "variants"):
        path = getattr(args, setting)
        if path is not None:
            if not Path(path).is_file():
                raise UsageError(f"--{setting}: no file {path}")
            overrides[setting] = str(Path(path).resolve())
    return {k: v for k, v in overrides.items() if v is not None}


def prepare_output(folder: str) -> Path:
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"output folder {out} is not writable: {exc.strerror or exc}") from None
    return out


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(Args, argv, prog="infadapter leaderboard")
    try:
        return run(args, command=" ".join(["infadapter leaderboard", *argv]))
    except UsageError as exc:
        print(f"infadapter leaderboard: error: {exc}", file=sys.stderr)
        return 2


def run(args: Args, command: str) -> int:
    if args.backend not in BACKENDS:
        raise UsageError(f"unknown backend {args.backend!r}; valid backends: {', '.join(BACKENDS)}")
    try:
        protocol = get_protocol(args.protocol)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if os.getcwd() not in sys.path:  # module:attribute specs may name a module of the current folder
        sys.path.append(os.getcwd())
    try:
        # a bad name is a usage error before anything runs; the sweep says what a name resolves to
        resolve_agents(protocol, args.agents, log=lambda _message: None)
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    scenario_names = check_names("scenario", args.scenarios, list(protocol.scenarios))
    seeds = list(dict.fromkeys(args.seeds)) or list(protocol.seeds)
    betas = check_betas(args.betas)
    overrides = env_overrides(args)
    out = prepare_output(args.out or protocol.default_out)
    try:
        results = run_sweep(
            protocol.name,
            args.agents,  # none given: every contender (those that cannot play in a world of one's own skipped)
            scenario_names,
            betas,
            seeds,
            out,
            args.backend,
            args.workers,
            args.address,
            env=overrides,
            reuse=args.reuse,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the finished rows are in {out / CSV_NAME}; run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    except (ResultsError, SweepError) as exc:
        raise UsageError(str(exc)) from None
    except EpisodeError as exc:
        raise UsageError(f"{exc} (the finished rows are in {out / CSV_NAME}; the same command resumes)") from None
    print(write_summary(out, results, command=command, protocol=protocol))
    if args.figures:
        from infadapter_env.leaderboard.figures import (
            beta_sweep,
            paper_figure,
            pareto_figure,
            performance_profile,
            timeline,
        )

        if protocol.name == "paper-2023":
            figures = [paper_figure(results, out / "paper_figure.png")]
        else:
            figures = [beta_sweep(results, out / "beta_sweep.png")]
        figures.append(performance_profile(results, out / "performance_profile.png"))
        figures.append(pareto_figure(results, out / "pareto.png"))
        drawn = timeline_row(results, args.timeline_agent, args.timeline_scenario)
        if drawn is not None:
            name = f"timeline_{drawn['agent']}_{drawn['scenario']}_beta{drawn['beta']:g}.png".replace("/", "-")
            figures.append(timeline(drawn, out / name))
        print("figures: " + ", ".join(str(f) for f in figures))
    print(f"rows: {out / CSV_NAME} ({len(results)} rows)")
    return 0


def timeline_row(results: pd.DataFrame, agent: str, scenario: str) -> pd.Series | None:
    """The row to draw: the agent on the scenario (else any scenario) at the beta nearest the paper's
    0.05, lowest seed first."""
    candidates = results[results["agent"] == agent]
    if (candidates["scenario"] == scenario).any():
        candidates = candidates[candidates["scenario"] == scenario]
    if candidates.empty:
        return None
    order = candidates.assign(distance=(candidates["beta"] - 0.05).abs()).sort_values(["distance", "seed"])
    return order.iloc[0]


if __name__ == "__main__":
    raise SystemExit(main())
