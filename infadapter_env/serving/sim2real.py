"""Play one episode on real model servers, replay its actions in both simulators, report the error.

Sim-to-real, per decision interval.

    infadapter sim2real --agent infadapter --agent-options capacity_model=measured \\
        --profile results/profiles/this-machine/profile.csv --scenario paper --rate-multiplier 0.04 \\
        --budget-cores 1 --min-cores 1 --episode-length-s 600 --out results/sim2real/this-machine

The agent plays ``gym.make("InfAdapter-v0", backend="live", ...)`` (``infadapter_env.serving.live``:
Ray Serve, the trace's seconds replayed as real requests); its exact actions are then replayed on
the fast and on the request-level simulator with the same profile and settings. Writes
``intervals.csv`` (per interval: arrivals, deployment, accuracy, violation %, P99 live and
simulated, their relative errors, failed requests, lost replicas), ``summary.md`` (the errors:
median and worst per-interval P99 relative error, the episode's violation-% difference, the
accuracy difference), ``sim2real.png`` and ``sim2real.json`` (command, seed, versions). On a bigger
machine or an existing Ray cluster: more cores and ``--address``.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infadapter_env.core.rollout import episode_metrics, play_steps, replay
from infadapter_env.options import option
from infadapter_env.provenance import git_commit, versions


@dataclass
class Sim2RealOptions:
    """Play one episode on real model servers and replay it in the simulators."""

    agent: str = option("infadapter", "the agent (infadapter agents)")
    agent_options: list[str] = option([], "the agent's options as key=value (e.g. capacity_model=measured)")
    profile: str | None = option(None, "the world's capacity profile (measured by infadapter profile)")
    variants: str | None = option(None, "its variants file (default: variants.csv beside the profile)")
    scenario: str = option("paper", "the trace scenario")
    rate_multiplier: float = option(0.04, "scales the trace's rates to what this machine serves")
    budget_cores: int = option(1, "core budget of the deployments")
    min_cores: int = option(1, "the smallest server")
    slo_ms: int = option(750, "the P99 SLO (one the profile measured)")
    interval_s: int = option(30, "seconds between decisions")
    episode_length_s: int | None = option(None, "play this many seconds of the trace (default: all of it)")
    window_start_s: int = option(0, "from this second of the trace (with --episode-length-s)")
    seed: int = option(0, "seed of the episode (arrival times)")
    address: str | None = option(None, "an existing Ray cluster's address (default: start a local one)")
    out: str = option("results/sim2real", "output folder")


def run(args: Sim2RealOptions, agent: Any, options: dict[str, Any], command: str) -> dict[str, Any]:
    """Play ``agent`` (made with ``options``) live, replay its actions in both simulators, write the
    comparison into ``args.out`` and return its record (``sim2real.json``)."""

    kwargs: dict[str, Any] = {
        "scenario": args.scenario,
        "rate_multiplier": args.rate_multiplier,
        "budget_cores": args.budget_cores,
        "min_cores": args.min_cores,
        "slo_ms": args.slo_ms,
        "interval_s": args.interval_s,
        "profile": args.profile,
        "variants": args.variants,
    }
    if args.episode_length_s is not None:
        kwargs |= {"episode_length_s": args.episode_length_s, "window_start_s": args.window_start_s}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print("playing the episode on real servers (one interval takes its seconds) ...", file=sys.stderr)
    live = play_steps(agent, kwargs | {"backend": "live", "ray_address": args.address}, args.seed)
    live_s = time.perf_counter() - started
    settings = live.settings | {"seed": args.seed, "backend": "sim", "ray_address": None}
    fast = replay(settings | {"simulator": "fast"}, live.actions)
    request = replay(settings | {"simulator": "request"}, live.actions)
    rows = interval_rows(live.infos, fast, request, live.settings)
    write_csv(out / "intervals.csv", rows)
    summary = summarise(rows, live.infos, fast, request, live.settings)
    (out / "summary.md").write_text(markdown(summary, rows, command, live_s, live.settings), encoding="utf-8")
    figure(out / "sim2real.png", rows, float(live.settings["slo_ms"]))
    record = {
        "command": command,
        "seed": args.seed,
        "agent": args.agent,
        "agent_options": options,
        "settings": {k: v for k, v in live.settings.items() if k not in ("weights", "world")},
        "summary": summary,
        "live_s": round(live_s, 1),
        "versions": versions(),
        "commit": git_commit(),
    }
    (out / "sim2real.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return record


def _pct(info: dict[str, Any]) -> float:
    return 100.0 * info["violated"] / info["arrivals"] if info["arrivals"] else 0.0


def _relative(simulated: float, live: float) -> float | None:
    return simulated / live - 1.0 if live > 0 and simulated > 0 else None


def interval_rows(live: list[dict], fast: list[dict], request: list[dict], settings: dict) -> list[dict[str, Any]]:
    """Per interval: what was deployed and what each of live, fast and request-level measured."""
    rows = []
    for k, (a, f, r) in enumerate(zip(live, fast, request, strict=True)):
        rows.append(
            {
                "step": k + 1,
                "arrivals": a["arrivals"],
                "cores": a["cores"],
                "deployment": json.dumps(a["cores_per_replica"]),
                "aa_live": round(a["aa_effective"], 5),
                "aa_fast": round(f["aa_effective"], 5),
                "aa_request": round(r["aa_effective"], 5),
                "violation_pct_live": round(_pct(a), 3),
                "violation_pct_fast": round(_pct(f), 3),
                "violation_pct_request": round(_pct(r), 3),
                "p99_ms_live": round(a["latency_p99_ms"], 2),
                "p99_ms_fast": round(f["latency_p99_ms"], 2),
                "p99_ms_request": round(r["latency_p99_ms"], 2),
                "p99_error_fast": _relative(f["latency_p99_ms"], a["latency_p99_ms"]),
                "p99_error_request": _relative(r["latency_p99_ms"], a["latency_p99_ms"]),
                "failed_requests": a["failed_requests"],
                "unanswered_requests": a["unanswered_requests"],
                "replicas_lost": a["replicas_lost"],
            }
        )
    return rows


def summarise(
    rows: list[dict], live: list[dict], fast: list[dict], request: list[dict], settings: dict[str, Any]
) -> dict[str, Any]:
    """The errors of each simulator against the live episode (episode metrics as the leaderboard
    computes them, ``episode_metrics``)."""

    metrics = {
        name: episode_metrics(infos, settings) for name, infos in (("live", live), ("fast", fast), ("request", request))
    }
    out: dict[str, Any] = {
        "intervals": len(rows),
        "violation_pct_live": metrics["live"]["slo_violation_pct"],
        "aa_live": metrics["live"]["aa_effective"],
        "failed_requests": sum(i["failed_requests"] for i in live),
        "replicas_lost": sum(i["replicas_lost"] for i in live),
    }
    for name in ("fast", "request"):
        errors = [abs(r[f"p99_error_{name}"]) for r in rows if r[f"p99_error_{name}"] is not None]
        out[name] = {
            "p99_median_rel_error": statistics.median(errors) if errors else None,
            "p99_worst_rel_error": max(errors) if errors else None,
            "p99_intervals": len(errors),
            "violation_pct": metrics[name]["slo_violation_pct"],
            "violation_diff_pts": metrics[name]["slo_violation_pct"] - out["violation_pct_live"],
            "aa": metrics[name]["aa_effective"],
            "aa_diff": metrics[name]["aa_effective"] - out["aa_live"],
        }
    return out


def markdown(summary: dict[str, Any], rows: list[dict], command: str, live_s: float, settings: dict) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f} %"

    lines = [
        "# Sim-to-real",
        "",
        f"Made by `{command}` ({live_s:.0f} s live). World: profile `{settings['profile']}`, budget "
        f"{settings['budget_cores']} cores, SLO {settings['slo_ms']} ms, "
        f"rate multiplier {settings['rate_multiplier']}, "
        f"{summary['intervals']} intervals of {settings['interval_s']} s. Live: {summary['violation_pct_live']:.2f} % "
        f"of requests violated the SLO, accuracy {summary['aa_live']:.4f}, {summary['failed_requests']} failed "
        f"requests, {summary['replicas_lost']} replicas lost.",
        "",
        "| simulator | P99 rel. error, median over intervals | worst | violation % | difference (pts) | "
        "accuracy | difference |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("fast", "request"):
        s = summary[name]
        lines.append(
            f"| {name} | {pct(s['p99_median_rel_error'])} | {pct(s['p99_worst_rel_error'])} | "
            f"{s['violation_pct']:.2f} | {s['violation_diff_pts']:+.2f} | {s['aa']:.4f} | {s['aa_diff']:+.4f} |"
        )
    lines += [
        "",
        "| step | arrivals | deployment | P99 live ms | fast | request | violation % live | fast | request |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['step']} | {r['arrivals']:.0f} | {r['deployment']} | {r['p99_ms_live']:.0f} | {r['p99_ms_fast']:.0f} | "
        f"{r['p99_ms_request']:.0f} | {r['violation_pct_live']:.1f} | {r['violation_pct_fast']:.1f} | "
        f"{r['violation_pct_request']:.1f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def figure(path: Path, rows: list[dict[str, Any]], slo_ms: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name, style in (("live", "k-o"), ("fast", "C0--"), ("request", "C1:")):
        top.plot(steps, [r[f"p99_ms_{name}"] for r in rows], style, label=name, markersize=3)
        bottom.plot(steps, [r[f"violation_pct_{name}"] for r in rows], style, label=name, markersize=3)
    top.axhline(slo_ms, color="red", linewidth=0.8, label="SLO")
    top.set_ylabel("P99 latency (ms)")
    bottom.set_ylabel("SLO violations (%)")
    bottom.set_xlabel("decision interval")
    top.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
