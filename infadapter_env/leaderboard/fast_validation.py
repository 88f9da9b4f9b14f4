"""Hold the fast simulator to the request-level reference on every leaderboard agent's decisions
(``infadapter validate-fast``).

    infadapter validate-fast                       (or: python -m infadapter_scripts.validate_fast)
    infadapter validate-fast --agents infadapter vpa-50 --windows 5

For every agent and scenario (the paper slice and ``--windows`` held-out windows of the test days,
drawn with seed ``--window-seed``) the agent plays one episode on the fast simulator at beta 0.05;
its recorded action sequence is then replayed on the request-level simulator (Poisson arrivals,
seed 0). Per episode: the SLO-violation % of both and their difference; per interval: the relative
error of the fast P99 latency against the reference. Writes ``episodes.csv`` and ``summary.md``
into ``--out`` and prints the summary; exits 1 if a tolerance is missed.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import infadapter_env
from infadapter_env.core import agent_registry
from infadapter_env.core.rollout import play, replay
from infadapter_env.leaderboard.protocol import EPISODE_S, Scenario, env_kwargs
from infadapter_env.options import option
from infadapter_env.provenance import git_commit
from infadapter_env.world.traces import scenario as load_scenario
from infadapter_env.world.traces import valid_window_starts

VIOLATION_TOLERANCE_PTS = 2.0
P99_TOLERANCE = 0.15
BETA = 0.05


@dataclass
class ValidationOptions:
    """Validate the fast simulator against the request-level simulator."""

    out: str = option("results/fast_vs_request", "output folder")
    agents: list[str] = option([], "agents (default: every registered agent)")
    windows: int = option(20, "held-out test-day windows besides the paper slice")
    window_seed: int = option(7, "seed of the window draw")
    workers: int = option(2, "parallel processes")


def validation_scenarios(windows: int, seed: int) -> list[Scenario]:
    """The paper slice and ``windows`` held-out windows of the test days (a fixed draw)."""
    starts = valid_window_starts(load_scenario("test"), EPISODE_S)
    chosen = sorted(int(s) for s in np.random.default_rng(seed).choice(starts, size=windows, replace=False))
    out = [Scenario("paper", {"scenario": "paper"})]
    for start in chosen:
        kwargs = {"scenario": "test", "episode_length_s": EPISODE_S, "window_start_s": start}
        out.append(Scenario(f"test@{start}", kwargs))
    return out


def compare(agent_name: str, scenario: Scenario) -> dict[str, Any]:
    """One agent's episode on the fast simulator, replayed on the request-level one."""
    import torch

    torch.set_num_threads(1)
    # The protocol's own simulator may be the request-level one: the agent plays on the fast one here.
    kwargs = env_kwargs(scenario, BETA) | {"simulator": "fast"}
    metrics, actions, _, settings = play(agent_registry.make(agent_name), kwargs, 0)
    fast = replay(settings | {"seed": 0, "simulator": "fast"}, actions)
    reference = replay(settings | {"seed": 0, "simulator": "request"}, actions)
    errors = [
        abs(f["latency_p99_ms"] / r["latency_p99_ms"] - 1.0)
        for f, r in zip(fast, reference, strict=True)
        if r["latency_p99_ms"] > 0 and f["latency_p99_ms"] > 0
    ]
    fast_pct = 100 * sum(i["violated"] for i in fast) / max(sum(i["arrivals"] for i in fast), 1e-12)
    ref_pct = 100 * sum(i["violated"] for i in reference) / max(sum(i["arrivals"] for i in reference), 1e-12)
    return {
        "agent": agent_name,
        "scenario": scenario.name,
        "violation_pct_fast": fast_pct,
        "violation_pct_request": ref_pct,
        "violation_diff_pts": fast_pct - ref_pct,
        "p99_median_rel_error": statistics.median(errors) if errors else 0.0,
        "p99_intervals": len(errors),
        "p99_rel_errors": json.dumps([round(e, 6) for e in errors]),
        "objective_fast": metrics["objective"],
    }


def summarise(rows: list[dict[str, Any]]) -> tuple[list[str], bool]:
    """The summary table (markdown lines) per agent, and whether every tolerance holds."""
    lines = [
        "| agent | episodes | violation % (request) | violation % (fast) | worst abs. difference (pts) | "
        "P99 rel. error, median over intervals | worst episode's median |",
        "|---|---|---|---|---|---|---|",
    ]
    ok = True
    for agent in dict.fromkeys(r["agent"] for r in rows):
        mine = [r for r in rows if r["agent"] == agent]
        worst_diff = max(abs(r["violation_diff_pts"]) for r in mine)
        pooled = [e for r in mine for e in json.loads(r["p99_rel_errors"])]
        median = statistics.median(pooled) if pooled else 0.0
        ok = ok and worst_diff <= VIOLATION_TOLERANCE_PTS and median <= P99_TOLERANCE
        lines.append(
            f"| {agent} | {len(mine)} | {statistics.fmean(r['violation_pct_request'] for r in mine):.2f} | "
            f"{statistics.fmean(r['violation_pct_fast'] for r in mine):.2f} | {worst_diff:.2f} | "
            f"{100 * median:.1f} % | {100 * max(r['p99_median_rel_error'] for r in mine):.1f} % |"
        )
    all_diff = max(abs(r["violation_diff_pts"]) for r in rows)
    pooled = [e for r in rows for e in json.loads(r["p99_rel_errors"])]
    within = sum(e <= P99_TOLERANCE for e in pooled)
    lines += [
        "",
        f"All {len(rows)} episodes: worst violation-% difference {all_diff:.2f} pts (tolerance "
        f"{VIOLATION_TOLERANCE_PTS}); per-interval P99 relative error over {len(pooled)} intervals: median "
        f"{100 * statistics.median(pooled):.1f} % (tolerance {100 * P99_TOLERANCE:.0f} % per agent), "
        f"{100 * within / len(pooled):.0f} % of intervals within {100 * P99_TOLERANCE:.0f} %.",
    ]
    return lines, ok


def run(pairs: Iterable[tuple[str, Scenario]], workers: int) -> list[dict[str, Any]]:
    pairs = list(pairs)
    rows = []
    if workers <= 1:
        for n, pair in enumerate(pairs, start=1):
            rows.append(compare(*pair))
            print(f"\r{n}/{len(pairs)} episodes", end="", file=sys.stderr, flush=True)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for n, row in enumerate(pool.map(compare, *zip(*pairs, strict=True)), start=1):
                rows.append(row)
                print(f"\r{n}/{len(pairs)} episodes", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def validate(args: ValidationOptions, names: list[str], command: str) -> tuple[str, bool]:
    """Play every agent of ``names`` on every validation scenario, replay each on the request
    level, write ``episodes.csv`` and ``summary.md`` into ``args.out``; the summary and whether
    every tolerance held."""
    started = time.perf_counter()
    scenarios = validation_scenarios(args.windows, args.window_seed)
    rows = run(((name, sc) for name in names for sc in scenarios), args.workers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "episodes.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table, ok = summarise(rows)
    text = [
        "# Fast simulator against the request-level reference",
        "",
        f"Command: `{command.strip()}` ({time.perf_counter() - started:.0f} s; commit {git_commit()}, "
        f"infadapter-gym {infadapter_env.__version__}). Beta {BETA}; scenarios: paper and "
        f"{args.windows} held-out windows (seed {args.window_seed}); request-level replay with Poisson "
        "arrivals, seed 0.",
        "",
        *table,
    ]
    (out / "summary.md").write_text("\n".join(text) + "\n")
    return "\n".join(text), ok
