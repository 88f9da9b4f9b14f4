"""Leaderboard figures: the beta sweep (the paper's evaluation figure), performance profiles, Pareto
fronts, and episode timelines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from infadapter_env.core.rollout import replay
from infadapter_env.leaderboard.aggregate import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    mean_ci,
    normaliser_of,
    performance_profiles,
    score_set,
    seed_means,
    with_scores,
)
from infadapter_env.leaderboard.episode import row_quotas
from infadapter_env.leaderboard.pareto import budget_of, pareto_fronts
from infadapter_env.leaderboard.timeline import interval_rows
from infadapter_env.world.profiles import World, load_world
from infadapter_env.world.traces import scenario as load_scenario


def beta_sweep(results: pd.DataFrame, path: Path) -> Path:
    """SLO violations, effective accuracy and mean cores against beta, one line per agent."""
    panels = [
        ("slo_violation_pct", "SLO violations (%)"),
        ("aa_effective", "effective accuracy"),
        ("mean_cores", "mean cores (cost)"),
    ]
    agents = sorted(set(results["agent"]))
    betas = sorted(set(results["beta"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 4.8))
    palette = [plt.get_cmap("tab20")(k) for k in range(20)]  # distinct colours for up to 20 agents
    colours = {agent: palette[k % len(palette)] for k, agent in enumerate(agents)}
    for ax, (column, label) in zip(axes, panels, strict=True):
        means = results.groupby(["agent", "beta"])[column].mean()
        for agent in agents:
            ys = [means.get((agent, beta), np.nan) for beta in betas]
            style = "-o" if agent in ("infadapter", "oracle") else "--."
            ax.plot(betas, ys, style, label=agent, color=colours[agent], linewidth=2 if agent == "infadapter" else 1)
        ax.set_xscale("log")
        ax.set_xlabel("beta (resource-cost weight)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.suptitle("InfAdapter-Gym: every agent over the beta sweep (mean over scenarios and seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def agent_colours(agents: list[str]) -> dict[str, tuple]:
    """Distinct colours for up to 20 agents (tab20), in the order given."""
    palette = [plt.get_cmap("tab20")(k) for k in range(20)]
    return {agent: palette[k % len(palette)] for k, agent in enumerate(agents)}


def performance_profile(
    results: pd.DataFrame, path: Path, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED, points: int = 81
) -> Path:
    """Performance profiles of the score (rliable's score distributions; the normalised objective of
    ``aggregate.with_scores``), one panel per beta: for each tau, the share of an agent's runs x
    scenarios whose score exceeds tau, with its 95 % window-bootstrap band
    (``aggregate.performance_profiles``); tau spans the beta's scores."""
    normaliser = normaliser_of(results)
    results = with_scores(results)
    betas = sorted(set(results["beta"]))
    colours = agent_colours(sorted(set(results["agent"])))
    ncols = min(len(betas), 3)
    nrows = -(-len(betas) // ncols)
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(5 * ncols + (0 if ncols * nrows > len(betas) else 2.5), 4.2 * nrows),
        sharey=True,
        squeeze=False,
    )
    axes = list(grid.ravel())
    for ax in axes[len(betas) :]:
        ax.set_visible(False)
    for ax, beta in zip(axes, betas, strict=False):
        scores = score_set(results, beta)
        if not scores.matrices:
            ax.set_title(f"beta = {beta:g}: no complete seed")
            continue
        values = np.concatenate([m.ravel() for m in scores.matrices.values()])
        low, high = float(values.min()), float(values.max())
        pad = 0.02 * (high - low) or 0.01
        taus = np.linspace(low - pad, high + pad, points)
        for agent, (profile, lower, upper) in performance_profiles(scores, taus, reps, seed).items():
            width = 2.0 if agent == "infadapter" else 1.0
            ax.plot(taus, profile, color=colours[agent], linewidth=width, label=agent)
            ax.fill_between(taus, lower, upper, color=colours[agent], alpha=0.15, linewidth=0)
        ax.set_title(f"beta = {beta:g} ({len(scores.scenarios)} scenarios)")
        ax.set_xlabel(f"score tau ({'objective' if normaliser is None else f'objective / {normaliser}'})")
        ax.grid(alpha=0.3)
    for row in grid:
        row[0].set_ylabel("share of runs x scenarios\nwith score > tau")
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    labels = sorted(handles)
    spare = axes[len(betas) :]
    if spare:  # the legend in the grid's first empty cell
        spare[0].set_visible(True)
        spare[0].axis("off")
        spare[0].legend([handles[k] for k in labels], labels, loc="center", fontsize=8, ncols=2)
    else:
        fig.legend([handles[k] for k in labels], labels, loc="center right", fontsize=8)
    seeds = ", ".join(str(s) for s in sorted(set(results["seed"])))
    fig.suptitle(
        f"Performance profiles of the score (seeds {seeds}; 95 % bands of a bootstrap over scenarios and seeds, "
        f"{reps} resamples)"
    )
    fig.tight_layout(rect=(0, 0, 1 if spare else 1 - 2.3 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pareto_figure(results: pd.DataFrame, path: Path) -> Path:
    """Every agent's operating points over the beta sweep (``pareto.pareto_fronts``): effective
    accuracy (left) and SLO violations (right) against mean cores; points on the agent's Pareto
    front filled, dominated ones hollow, joined in beta order."""
    fronts = pareto_fronts(results)
    colours = agent_colours(sorted(f.agent for f in fronts))
    fig, (ax_acc, ax_viol) = plt.subplots(1, 2, figsize=(15, 5.5), sharex=True)
    for front in fronts:
        points, colour = front.points, colours[front.agent]
        label = front.agent
        for ax, column in ((ax_acc, "aa_effective"), (ax_viol, "slo_violation_pct")):
            ax.plot(points["mean_cores"], points[column], "-", color=colour, linewidth=0.8, alpha=0.6)
            on = points["on_front"].to_numpy()
            ax.scatter(points["mean_cores"][on], points[column][on], color=colour, s=36, label=label, zorder=3)
            ax.scatter(
                points["mean_cores"][~on], points[column][~on], facecolors="none", edgecolors=colour, s=36, zorder=3
            )
    budget = budget_of(results)
    for ax in (ax_acc, ax_viol):
        ax.axvline(budget, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(f"mean cores (budget {budget:g})")
        ax.grid(alpha=0.3)
    ax_acc.set_ylabel("effective accuracy (maximise)")
    ax_viol.set_ylabel("SLO violations, % of requests (minimise)")
    ax_viol.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.suptitle(
        "Pareto fronts over the beta sweep: one point per beta (mean over scenarios and seeds); filled: on the "
        "agent's front"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


COLOUR_SLOTS = ("infadapter", "ms+", "vpa-18", "vpa-34", "vpa-50", "vpa-101", "vpa-152")


def paper_figure(results: pd.DataFrame, path: Path) -> Path:
    """The paper's evaluation figure: per beta, grouped bars of SLO violations, accuracy loss
    against ResNet152 and mean cores, for InfAdapter, MS+ and every VPA variant, with 95 % CIs
    over seeds (whiskers)."""
    top_accuracy = settings_world(json.loads(results["env_settings"].iloc[0])).variants[-1].accuracy
    vpas = sorted(
        {a for a in results["agent"] if a.startswith("vpa-")},
        key=lambda a: (a.split("/")[-1] != "throttled", int(a.split("/")[0].removeprefix("vpa-"))),
    )
    contenders = [a for a in ["infadapter", "ms+", *vpas] if a in set(results["agent"])]
    betas = sorted(set(results["beta"]))
    panels = [
        ("slo_violation_pct", "SLO violations (% of requests)", 1.0),
        ("aa_planned", "accuracy loss vs ResNet152 (points)", -100.0),
        ("mean_cores", "mean cores (cost)", 1.0),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(15, 11), sharex=True)
    width = 0.8 / max(len(contenders), 1)
    palette = plt.get_cmap("tab10")
    for ax, (column, label, scale) in zip(axes, panels, strict=True):
        per_seed = seed_means(results, ["agent", "beta"], column)
        for k, agent in enumerate(contenders):
            means, halves = [], []
            for beta in betas:
                values = per_seed.get((agent, beta))
                mean, half = mean_ci(values.tolist()) if values is not None else (np.nan, 0.0)
                means.append(scale * mean + (100 * top_accuracy if scale < 0 else 0.0))
                halves.append(abs(scale) * half)
            x = np.arange(len(betas)) + (k - (len(contenders) - 1) / 2) * width
            busy = agent.endswith("/busy")
            base = agent.split("/")[0]  # a VPA variant has one colour; the busy signal is hatched
            colour = palette(COLOUR_SLOTS.index(base) if base in COLOUR_SLOTS else 9)
            ax.bar(
                x,
                means,
                width,
                yerr=halves,
                capsize=2,
                label=agent,
                color=colour,
                hatch="//" if busy else None,
                edgecolor="black",
                linewidth=0.3,
            )
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(np.arange(len(betas)), [f"beta = {b:g}" for b in betas])
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    seeds = ", ".join(str(s) for s in sorted(set(results["seed"])))
    fig.suptitle(f"protocol paper-2023: InfAdapter, MS+ and VPA (means over seeds {seeds}, 95 % CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def episode_arrivals(settings: dict) -> np.ndarray:
    """Per-second arrivals of a leaderboard episode, from its recorded settings."""
    trace = load_scenario(settings["scenario"]).scaled(float(settings["rate_multiplier"]))
    if settings.get("window_start_s") is not None:
        trace = trace.window(int(settings["window_start_s"]), int(settings["episode_length_s"]))
    return trace.arrivals


def settings_world(settings: dict) -> World:
    """The world a row's recorded env settings ran in."""
    return load_world(settings.get("profile"), settings.get("variants"))


def timeline(row: dict[str, str], path: Path) -> Path:
    """One leaderboard row's episode, replayed and drawn by ``draw_timeline``."""
    settings = json.loads(row["env_settings"])
    infos = replay(settings, json.loads(row["actions"]), row_quotas(row))
    interval = int(settings["interval_s"])
    rows = interval_rows(str(row["agent"]), infos, interval, list(settings_world(settings).names))
    title = (
        f"{row['agent']} on {row['scenario']} (beta {row['beta']}): objective {float(row['objective']):.4f}, "
        f"SLO violations {float(row['slo_violation_pct']):.2f} %"
    )
    arrivals = episode_arrivals(settings)[: len(infos) * interval]
    return draw_timeline(pd.DataFrame(rows), arrivals, float(settings["slo_ms"]), title, path)


def draw_timeline(rows: pd.DataFrame, arrivals: np.ndarray, slo_ms: float, title: str, path: Path) -> Path:
    """Episodes interval by interval (``intervals.interval_rows``; one or more agents, by the
    ``agent`` column): the arrival rate against the capacity (one agent: stacked by variant; several:
    each agent's total), cores, P99 latency against the SLO, SLO violations, effective accuracy.
    ``arrivals``: the requests of every second of the episode."""
    agents = list(dict.fromkeys(rows["agent"]))
    colours = {agent: plt.get_cmap("tab10")(k % 10) for k, agent in enumerate(agents)}
    fig, (ax_rate, ax_cores, ax_latency, ax_viol, ax_accuracy) = plt.subplots(
        5, 1, figsize=(12, 12), sharex=True, height_ratios=[3, 1.2, 1.5, 1.2, 1.2]
    )
    ax_rate.plot(np.arange(arrivals.size), arrivals, color="black", linewidth=0.8, label="arrivals (req/s)")
    for agent in agents:
        own = rows[rows["agent"] == agent]
        edges = [*own["start_s"], own["end_s"].iloc[-1]]
        if len(agents) == 1:
            variants = [c.removeprefix("capacity_rps_") for c in own.columns if c.startswith("capacity_rps_")]
            capacity = [_steps(own, f"capacity_rps_{v}") for v in variants]
            ax_rate.stackplot(
                edges, capacity, labels=[f"{v} target capacity" for v in variants], step="post", alpha=0.45
            )
        else:
            ax_rate.step(
                edges, _steps(own, "capacity_rps"), where="post", color=colours[agent], label=f"{agent} capacity"
            )
        ax_cores.step(edges, _steps(own, "cores"), where="post", color=colours[agent], label=agent)
        ax_latency.step(edges, _steps(own, "latency_p99_ms"), where="post", color=colours[agent], label=agent)
        ax_viol.step(edges, _steps(own, "slo_violation_pct"), where="post", color=colours[agent], label=agent)
        ax_accuracy.step(edges, _steps(own, "aa_effective"), where="post", color=colours[agent], label=agent)
    ax_rate.set_ylabel("req/s")
    ax_rate.legend(loc="upper left", fontsize=8, ncols=3)
    ax_rate.set_title(title)
    ax_cores.set_ylabel("cores")
    ax_latency.axhline(slo_ms, color="tab:red", linestyle="--", label=f"SLO {slo_ms:g} ms")
    ax_latency.set_yscale("log")
    ax_latency.set_ylabel("P99 latency (ms)")
    ax_latency.legend(loc="upper left", fontsize=8, ncols=4)
    ax_viol.set_ylabel("SLO violations\n(% of requests)")
    ax_accuracy.set_ylabel("effective\naccuracy")
    ax_accuracy.set_xlabel("time (s)")
    for ax in (ax_rate, ax_cores, ax_latency, ax_viol, ax_accuracy):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _steps(rows: pd.DataFrame, column: str) -> list[float]:
    """A column's values with the last one repeated, so that a post-step line covers the last interval."""
    return [*rows[column], rows[column].iloc[-1]]
