"""Score agents (learned ones, by checkpoint folder too) against InfAdapter per beta, with 95 %
confidence intervals (``python -m infadapter_scripts.eval_learned``).

    python -m infadapter_scripts.eval_learned --agents ppo-weights infadapter --protocol default
    python -m infadapter_scripts.eval_learned --agents ppo-weights infadapter --protocol validation

Plays each agent with ``infadapter_env.leaderboard.evaluate`` (a fresh agent per episode, the
protocol's env settings for a submitted agent) and writes ``rows.csv`` (one row per episode),
``table.md`` and ``summary.json`` to ``--out/<protocol>``. Per agent and beta: the mean objective
over the protocol's (scenario, seed) episodes; against the reference agent (``--reference``,
InfAdapter), the paired difference of the means (same scenarios and seeds). Both intervals are the
leaderboard's (``aggregate``: rliable's bootstrap over scenarios, seeds nested in them), not
t-intervals over episodes, which would count a window's correlated seeds as independent.

Choosing between checkpoints is done on ``--protocol validation`` (the paper slice and 30
validation windows); ``default`` is the sealed test split, to report on once the choice is made.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from infadapter_env.leaderboard import evaluate
from infadapter_env.leaderboard.aggregate import OBJECTIVE_COLUMN, mean_difference_intervals, mean_intervals, score_set
from infadapter_env.leaderboard.protocol import (
    DEFAULT_BETAS,
    get_protocol,
)
from infadapter_env.options import option
from infadapter_env.provenance import git_commit


@dataclass
class ComparisonOptions:
    """Score agents against InfAdapter per beta, with 95 % confidence intervals."""

    agents: list[str] = option(["ppo-weights"], "registered agents, or checkpoint folders, to score")
    reference: str = option("infadapter", "the agent to compare with (scored too)")
    protocol: str = option("default", "default (the sealed test split), validation (for choosing), or paper-2023")
    betas: list[float] = option(list(DEFAULT_BETAS), "betas to score")
    out: str = option("results/learned", "output folder (a subfolder per protocol)")
    reuse: bool = option(
        True, "reuse an agent's rows already in the output folder (rows-<agent>.csv) for the same betas"
    )


def compare(rows: pd.DataFrame, reference: str) -> list[dict[str, Any]]:
    """Per agent and beta: the mean objective and, against ``reference``, the paired mean
    difference, each with its window-bootstrap interval (``aggregate``), over the (scenario, seed)
    episodes every agent played at that beta."""
    out = []
    for beta in sorted(set(rows["beta"])):
        scores = score_set(rows, float(beta), OBJECTIVE_COLUMN)
        means = mean_intervals(scores)
        differences = mean_difference_intervals(scores, reference)
        at_beta = rows[
            (rows["beta"] == beta) & rows["scenario"].isin(scores.scenarios) & rows["seed"].isin(scores.seeds)
        ]
        for agent in scores.agents:
            mine = at_beta[at_beta["agent"] == agent]
            entry: dict[str, Any] = {
                "agent": agent,
                "beta": float(beta),
                "episodes": len(mine),
                "objective": means[agent].point,
                "ci_low": means[agent].low,
                "ci_high": means[agent].high,
                "slo_violation_pct": float(mine["slo_violation_pct"].mean()),
                "mean_cores": float(mine["mean_cores"].mean()),
            }
            if agent in differences:
                difference = differences[agent]
                entry |= {
                    "paired_difference": difference.point,
                    "paired_low": difference.low,
                    "paired_high": difference.high,
                    "at_least_matches": bool(difference.high >= 0),
                }
            out.append(entry)
    return out


def cell(point: float, low: float, high: float, signed: bool = False) -> str:
    fmt = "{:+.4f}" if signed else "{:.4f}"
    return f"{fmt.format(point)} [{fmt.format(low)}, {fmt.format(high)}]"


def table(summary: list[dict[str, Any]], reference: str) -> str:
    lines = [
        f"| agent | beta | objective [95 % CI] | minus {reference}, paired [95 % CI] | at least matches | "
        "SLO viol. % | mean cores |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        if "paired_difference" not in e:
            continue
        lines.append(
            f"| {e['agent']} | {e['beta']:g} | {cell(e['objective'], e['ci_low'], e['ci_high'])} | "
            f"{cell(e['paired_difference'], e['paired_low'], e['paired_high'], signed=True)} | "
            f"{'yes' if e['at_least_matches'] else 'no'} | {e['slo_violation_pct']:.2f} | {e['mean_cores']:.2f} |"
        )
    ref_rows = [e for e in summary if e["agent"] == reference]
    lines += ["", f"| {reference}: beta | objective [95 % CI] | SLO viol. % | mean cores |", "|---|---|---|---|"]
    lines += [
        f"| {e['beta']:g} | {cell(e['objective'], e['ci_low'], e['ci_high'])} | {e['slo_violation_pct']:.2f} | "
        f"{e['mean_cores']:.2f} |"
        for e in ref_rows
    ]
    lines += [
        "",
        "Intervals: 95 %, rliable's stratified bootstrap over scenarios with the seeds resampled within each "
        "(`infadapter_env/leaderboard/aggregate.py`); at least matches: the paired difference's interval reaches 0.",
    ]
    return "\n".join(lines) + "\n"


def compare_agents(args: ComparisonOptions, factory: Callable[[str], Callable[[], Any]], command: str) -> str:
    """Play ``args.agents`` and the reference (``factory(name)()`` makes a fresh agent) on the
    protocol, write ``rows.csv``, ``table.md`` and ``summary.json`` into ``args.out/<protocol>``
    and return the table (markdown, with its header)."""
    protocol = get_protocol(args.protocol)
    folder = Path(args.out) / protocol.name
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for name in dict.fromkeys([*args.agents, args.reference]):
        path = folder / f"rows-{name.strip('/').replace('/', '_')}.csv"
        if args.reuse and path.is_file():
            done = pd.read_csv(path)
            if sorted(done["beta"].unique()) == sorted(args.betas):
                frames.append(done)
                print(f"{name}: {len(done)} episodes from {path}", file=sys.stderr, flush=True)
                continue
        started = time.time()
        frames.append(evaluate(factory(name), protocol, args.betas, name=name))
        frames[-1].to_csv(path, index=False)
        print(f"{name}: {len(frames[-1])} episodes in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    rows = pd.concat(frames, ignore_index=True)
    rows.to_csv(folder / "rows.csv", index=False)
    summary = compare(rows, args.reference)
    text = table(summary, args.reference)
    header = (
        f"Command: `{command}` (commit {git_commit()}). Protocol `{protocol.name}`: {len(protocol.scenarios)} "
        f"scenarios x seeds {list(protocol.seeds)}; mean objective over the episodes, 95 % t-intervals; "
        f"paired: the same scenario and seed.\n\n"
    )
    (folder / "table.md").write_text(header + text)
    (folder / "summary.json").write_text(
        json.dumps({"command": command, "commit": git_commit(), "protocol": protocol.name, "rows": summary}, indent=2)
        + "\n"
    )
    return header + text
