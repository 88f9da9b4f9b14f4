"""Score agents (learned ones, by checkpoint folder too) against InfAdapter per beta, with 95 %
confidence intervals (``python -m infadapter_scripts.eval_learned``).

    python -m infadapter_scripts.eval_learned --agents ppo-weights infadapter --protocol default
    python -m infadapter_scripts.eval_learned --agents ppo-weights infadapter --protocol held-out-30

Plays each agent with ``infadapter_env.leaderboard.evaluate`` (a fresh agent per episode, the
protocol's env settings for a submitted agent) and writes ``rows.csv`` (one row per episode),
``table.md`` and ``summary.json`` to ``--out/<protocol>``. Per agent and beta: the mean objective
over the protocol's (scenario, seed) episodes and its 95 % t-interval; against the reference agent
(``--reference``, InfAdapter): whether the intervals overlap, and the paired difference (same
scenario and seed) with its 95 % t-interval.

``held-out-30`` stands for the default protocol's coming revision: the paper slice and 30 held-out
windows of the test days (1,260 s, drawn with ``TEST_WINDOW_SEED`` from the windows that avoid the
daily data gap), the request-level simulator, seeds 0-4. Where ``protocol.py`` defines that
protocol itself, ``--protocol default`` is the one to quote.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from infadapter_env.leaderboard import evaluate
from infadapter_env.leaderboard.protocol import (
    ACTION_MODE,
    DEFAULT_BETAS,
    EPISODE_S,
    TEST_WINDOW_SEED,
    Protocol,
    Scenario,
    default_contenders,
    get_protocol,
)
from infadapter_env.options import option
from infadapter_env.provenance import git_commit
from infadapter_env.world.traces import scenario as load_scenario
from infadapter_env.world.traces import valid_window_starts

HELD_OUT_WINDOWS = 30


@dataclass
class ComparisonOptions:
    """Score agents against InfAdapter per beta, with 95 % confidence intervals."""

    agents: list[str] = option(["ppo-weights"], "registered agents, or checkpoint folders, to score")
    reference: str = option("infadapter", "the agent to compare with (scored too)")
    protocol: str = option(
        "default", "default, paper-2023, or held-out-30 (30 held-out windows + paper, request level)"
    )
    betas: list[float] = option(list(DEFAULT_BETAS), "betas to score")
    out: str = option("results/learned", "output folder (a subfolder per protocol)")
    reuse: bool = option(
        True, "reuse an agent's rows already in the output folder (rows-<agent>.csv) for the same betas"
    )


def held_out_protocol(windows: int = HELD_OUT_WINDOWS) -> Protocol:
    """The paper slice and ``windows`` held-out test windows, request level, seeds 0-4."""
    starts = valid_window_starts(load_scenario("test"), EPISODE_S)
    chosen = sorted(int(s) for s in np.random.default_rng(TEST_WINDOW_SEED).choice(starts, windows, replace=False))
    scenarios = {"paper": Scenario("paper", {"scenario": "paper"})}
    for k, start in enumerate(chosen, start=1):
        kwargs = {"scenario": "test", "episode_length_s": EPISODE_S, "window_start_s": start}
        scenarios[f"test{k}"] = Scenario(f"test{k}", kwargs)
    env = {"action_mode": ACTION_MODE, "simulator": "request"}
    return Protocol(
        f"held-out-{windows}", scenarios, (0, 1, 2, 3, 4), env, default_contenders, f"results/held-out-{windows}"
    )


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval (0 for fewer than two values)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, 0.0
    sem = float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return mean, float(stats.t.ppf(0.975, len(values) - 1)) * sem


def compare(rows: pd.DataFrame, reference: str) -> list[dict[str, Any]]:
    """Per agent and beta: mean, CI, and the paired difference with ``reference``."""
    out = []
    keyed = rows.set_index(["agent", "beta", "scenario", "seed"])["objective"].sort_index()
    for (agent, beta), group in rows.groupby(["agent", "beta"], sort=True):
        mean, half = t_interval(group["objective"].to_numpy())
        entry: dict[str, Any] = {
            "agent": agent,
            "beta": float(beta),
            "episodes": len(group),
            "objective": mean,
            "ci95": half,
            "slo_violation_pct": float(group["slo_violation_pct"].mean()),
            "mean_cores": float(group["mean_cores"].mean()),
        }
        if agent != reference:
            ref = keyed.loc[reference, beta]
            mine = group.set_index(["scenario", "seed"])["objective"]
            diff = (mine - ref.reindex(mine.index)).to_numpy()
            ref_mean, ref_half = t_interval(ref.to_numpy())
            d_mean, d_half = t_interval(diff)
            entry |= {
                "reference_objective": ref_mean,
                "reference_ci95": ref_half,
                "ci_overlap": bool(mean + half >= ref_mean - ref_half and ref_mean + ref_half >= mean - half),
                "at_least_matches": bool(mean + half >= ref_mean - ref_half),
                "paired_difference": d_mean,
                "paired_ci95": d_half,
            }
        out.append(entry)
    return out


def table(summary: list[dict[str, Any]], reference: str) -> str:
    lines = [
        f"| agent | beta | objective (95 % CI) | {reference} (95 % CI) | CIs overlap or better | "
        f"paired difference (95 % CI) | SLO viol. % | mean cores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        if e["agent"] == reference:
            continue
        lines.append(
            f"| {e['agent']} | {e['beta']:g} | {e['objective']:.4f} ± {e['ci95']:.4f} | "
            f"{e['reference_objective']:.4f} ± {e['reference_ci95']:.4f} | "
            f"{'yes' if e['at_least_matches'] else 'no'} | {e['paired_difference']:+.4f} ± {e['paired_ci95']:.4f} | "
            f"{e['slo_violation_pct']:.2f} | {e['mean_cores']:.2f} |"
        )
    ref_rows = [e for e in summary if e["agent"] == reference]
    lines += ["", f"| {reference}: beta | objective (95 % CI) | SLO viol. % | mean cores |", "|---|---|---|---|"]
    lines += [
        f"| {e['beta']:g} | {e['objective']:.4f} ± {e['ci95']:.4f} | {e['slo_violation_pct']:.2f} | "
        f"{e['mean_cores']:.2f} |"
        for e in ref_rows
    ]
    return "\n".join(lines) + "\n"


def compare_agents(args: ComparisonOptions, factory: Callable[[str], Callable[[], Any]], command: str) -> str:
    """Play ``args.agents`` and the reference (``factory(name)()`` makes a fresh agent) on the
    protocol, write ``rows.csv``, ``table.md`` and ``summary.json`` into ``args.out/<protocol>``
    and return the table (markdown, with its header)."""
    protocol = held_out_protocol() if args.protocol == f"held-out-{HELD_OUT_WINDOWS}" else get_protocol(args.protocol)
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
