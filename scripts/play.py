"""Play one episode of one or more agents and write it interval by interval.

    infadapter play --agent infadapter --scenario paper --beta 0.05 --csv out.csv --plot out.png
    infadapter play --agent infadapter --agent vpa-50 --csv both.csv --plot both.png   (or: --agent infadapter,vpa-50)
    infadapter play --agent ms+ --trace my_trace.txt --episode-length-s 600 --window-start-s 0

Each agent plays as a contender of ``--protocol`` (default ``default``: every registered agent with
its default options) plays in the leaderboard: the same agent options and env settings, with
``--simulator``, ``--arrivals``, ``--episode-length-s``, ``--window-start-s`` and ``--trace`` on top
(a file of counts per second, or per ``--trace-resolution-s`` seconds).
``--scenario`` is one of the protocol's scenarios (``test1``..``test40``; ``paper``, ``val1``.. in
``validation``) or a named trace (``paper``, ``train``, ``test``, ``full``).
``--csv`` gets one row per agent and decision interval
(``infadapter_env.leaderboard.timeline`` documents the columns: arrivals, deployment per variant,
capacity, P50/P99 latency, SLO violations, drops, the reward and its terms AA/RC/LC); ``--plot``
draws every agent on one timeline. A summary per agent is printed.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from infadapter_env.core.objective import PAPER_BETA
from infadapter_env.core.rollout import Played, episode_metrics
from infadapter_env.core.settings import SIMULATORS
from infadapter_env.leaderboard.protocol import PROTOCOLS, Protocol, Scenario, get_protocol
from infadapter_env.leaderboard.sweep import SweepError, resolve_agents
from infadapter_env.leaderboard.timeline import play_contender, played_rows
from infadapter_env.options import option
from infadapter_env.world.arrivals import ARRIVAL_PROCESSES
from infadapter_env.world.traces import load_trace_file, scenario_names
from infadapter_scripts.arguments import parse


@dataclass
class Args:
    """Play one episode of one or more agents and write it interval by interval."""

    agent: list[str] = option(
        [], "agents to play (no default): repeat --agent, or give several names or comma-separated ones"
    )
    scenario: str | None = option(None, "a scenario of the protocol or a named trace (default: paper)")
    trace: str | None = option(None, "a text/CSV file of request counts, played instead of a scenario (default: none)")
    trace_column: str | None = option(None, "with --trace: the CSV column holding the counts (default: the first)")
    trace_resolution_s: int = option(
        1, "with --trace: the seconds each count covers (60: per-minute counts, spread over seconds)"
    )
    beta: float = option(PAPER_BETA, "resource-cost weight of the objective")
    seed: int = option(0, "seed passed to env.reset (it draws the window, if one is drawn, and the arrival times)")
    protocol: str = option(
        "default", f"the protocol whose contenders and env settings to play: {', '.join(PROTOCOLS)} (default: default)"
    )
    simulator: str | None = option(
        None,
        f"one of {', '.join(SIMULATORS)} (default: the protocol's; 'fast' needs arrivals 'poisson', so with "
        "paper-2023's 'loadgen' give --arrivals poisson too)",
    )
    arrivals: str | None = option(
        None, f"request-level arrival process: {', '.join(ARRIVAL_PROCESSES)} (default: the protocol's)"
    )
    episode_length_s: int | None = option(None, "play a window of this many seconds (default: the whole scenario)")
    window_start_s: int | None = option(
        None, "with --episode-length-s: the window's first second (default: drawn with the seed)"
    )
    slo_ms: int | None = option(None, "P99 SLO in ms, a profiled one (default: the protocol's, 750)")
    budget_cores: int | None = option(None, "core budget (default: the protocol's, 20)")
    interval_s: int | None = option(None, "seconds between decisions (default: the protocol's, 30)")
    profile: str | None = option(None, "a capacity profile CSV of one's own, calibrated (default: the shipped one)")
    variants: str | None = option(None, "a variants CSV (default: beside the profile, else the shipped one)")
    csv: str = option("", "write the per-interval rows to this CSV file (default: none)")
    plot: str = option("", "draw the timeline to this PNG file (default: none)")


class UsageError(ValueError):
    """Bad command-line input; reported as one line, not a traceback."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(Args, join_repeated(argv, "--agent"), prog="infadapter play")
    try:
        return run(args)
    except UsageError as exc:
        print(f"infadapter play: error: {exc}", file=sys.stderr)
        return 2


def join_repeated(argv: list[str], flag: str) -> list[str]:
    """``--agent a --agent b c`` as ``--agent a b c``: argparse keeps only the last of a repeated
    flag that takes several values."""
    values: list[str] = []
    rest: list[str] = []
    first = -1
    k = 0
    while k < len(argv):
        token = argv[k]
        k += 1
        if token != flag and not token.startswith(flag + "="):
            rest.append(token)
            continue
        if first < 0:
            first = len(rest)
        if token != flag:
            values.append(token.partition("=")[2])
            continue
        while k < len(argv) and not argv[k].startswith("-"):
            values.append(argv[k])
            k += 1
    if first < 0:
        return argv
    # An empty value list is left to argparse, which reports that --agent expects a value.
    return [*rest[:first], flag, *values, *rest[first:]]


def run(args: Args) -> int:
    try:
        protocol = get_protocol(args.protocol)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    labels = agent_labels(args.agent, protocol)
    scenario = episode_scenario(args, protocol)
    csv_path = writable(args.csv) if args.csv else None
    plot_path = writable(args.plot) if args.plot else None
    env: dict[str, Any] = {
        key: value
        for key, value in {
            "simulator": args.simulator,
            "arrivals": args.arrivals,
            "episode_length_s": args.episode_length_s,
            "window_start_s": args.window_start_s,
            "slo_ms": args.slo_ms,
            "budget_cores": args.budget_cores,
            "interval_s": args.interval_s,
            "profile": args.profile,
            "variants": args.variants,
        }.items()
        if value is not None
    }
    episodes: dict[str, Played] = {}
    for label in labels:
        try:
            episodes[label] = play_contender(protocol, label, scenario, args.beta, args.seed, env)
        except (ValueError, FileNotFoundError) as exc:  # invalid settings: the env and agents validate them
            raise UsageError(str(exc)) from None
    rows = pd.DataFrame([row for label, played in episodes.items() for row in played_rows(label, played)])
    for label, played in episodes.items():
        metrics = episode_metrics(played.infos, played.settings)
        print(
            f"{label}: objective {metrics['objective']:.4f}, SLO violations {metrics['slo_violation_pct']:.2f} %, "
            f"dropped {metrics['dropped_pct']:.2f} %, effective accuracy {metrics['aa_effective']:.4f}, "
            f"mean cores {metrics['mean_cores']:.2f}, reconfigurations {metrics['reconfigurations']} "
            f"({metrics['steps']} intervals of trace {played.reset_info['trace']})"
        )
    try:
        if csv_path is not None:
            rows.to_csv(csv_path, index=False)
            print(f"rows: {csv_path} ({len(rows)} rows)")
        if plot_path is not None:
            from infadapter_env.leaderboard.figures import draw_timeline

            first = next(iter(episodes.values()))
            title = f"{', '.join(labels)} on {scenario.name} (beta {args.beta:g}, seed {args.seed})"
            draw_timeline(rows, first.arrivals, float(first.settings["slo_ms"]), title, plot_path)
            print(f"figure: {plot_path}")
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or 'the output'}: {exc.strerror or exc}") from None
    return 0


def agent_labels(given: list[str], protocol: Protocol) -> list[str]:
    """The agents named (each value may be a comma-separated list), once each, in the order given."""
    labels = list(dict.fromkeys(name.strip() for value in given for name in value.split(",") if name.strip()))
    valid = list(protocol.contenders())
    if not labels:
        raise UsageError(f"give at least one --agent; valid agents: {', '.join(valid)}")
    if os.getcwd() not in sys.path:  # module:attribute specs may name a module of the current folder
        sys.path.append(os.getcwd())
    try:  # the protocol's contenders, or any agent the leaderboard takes (registered, entry point, spec)
        return resolve_agents(protocol, labels, log=lambda message: print(message, file=sys.stderr))
    except SweepError as exc:
        raise UsageError(str(exc)) from None


def episode_scenario(args: Args, protocol: Protocol) -> Scenario:
    """The env settings of the trace to play: a file, a scenario of the protocol, or a named trace."""
    if args.trace is not None:
        if args.scenario is not None:
            raise UsageError("give --scenario or --trace, not both")
        try:
            trace = load_trace_file(args.trace, args.trace_column, args.trace_resolution_s)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return Scenario(trace.name, {"trace": trace})
    if args.trace_column is not None or args.trace_resolution_s != 1:
        raise UsageError("--trace-column and --trace-resolution-s need --trace (a file of request counts)")
    name = args.scenario or "paper"
    if name in protocol.scenarios:
        return protocol.scenarios[name]
    if name in scenario_names():
        return Scenario(name, {"scenario": name})
    valid = list(dict.fromkeys([*protocol.scenarios, *scenario_names()]))
    raise UsageError(f"unknown scenario {name!r}; valid scenarios: {', '.join(valid)}")


def writable(path: str) -> Path:
    """``path``, its folder created if missing."""
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder of {out}: {exc.strerror or exc}") from None
    return out


if __name__ == "__main__":
    raise SystemExit(main())
