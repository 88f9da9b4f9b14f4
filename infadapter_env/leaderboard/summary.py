"""``summary.md`` of a leaderboard: contenders ranked per beta, their Pareto fronts over the beta
sweep, and the paper's headline checked.

Built from the results DataFrame (``store.load_results``). Per beta, contenders ranked by the
ranking rule of ``aggregate``: those that meet the P99 SLO first, each group by the interquartile
mean (IQM) of the normalised score over seeds x scenarios; a rank is one number only where the
paired IQM differences separate the contender from every other of its group. Beside each: its SLO
attainment, IQM, paired difference with InfAdapter and probability of improvement over it, each
with its window-bootstrap interval, and the plain means of every metric over its episodes. Then
per contender its Pareto front of (effective accuracy, mean cores, SLO violation %) over the betas
(``pareto``). Then the paper's headline against VPA (``headline``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from infadapter_env.core.rollout import SLO_MET_LATE_SHARE
from infadapter_env.leaderboard.aggregate import (
    ATTAINMENT_TOLERANCE,
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    CI_LEVEL,
    FLOOR,
    REFERENCE_AGENT,
    BetaAggregates,
    Interval,
    beta_aggregates,
    normaliser_of,
    rliable_version,
)
from infadapter_env.leaderboard.headline import headline
from infadapter_env.leaderboard.pareto import budget_of, pareto_fronts
from infadapter_env.leaderboard.protocol import Protocol
from infadapter_env.leaderboard.store import CSV_NAME

SUMMARY_COLUMNS = (  # (header, column, format)
    ("objective", "objective", "{:.4f}"),
    ("SLO viol. %", "slo_violation_pct", "{:.2f}"),
    ("5 s windows P99 > SLO %", "window_violation_pct", "{:.1f}"),
    ("dropped %", "dropped_pct", "{:.2f}"),
    ("P99 ms (mean)", "p99_mean_ms", "{:.0f}"),
    ("P99 ms (worst)", "p99_worst_ms", "{:.0f}"),
    ("accuracy (eff.)", "aa_effective", "{:.4f}"),
    ("accuracy (planned)", "aa_planned", "{:.4f}"),
    ("mean cores", "mean_cores", "{:.2f}"),
    ("LC", "loading_cost", "{:.3f}"),
    ("reconfig.", "reconfigurations", "{:.1f}"),
    ("decision ms (mean)", "decision_ms_mean", "{:.3f}"),
)


def ranking(results: pd.DataFrame, beta: float) -> pd.DataFrame:
    """Per contender at ``beta``: the mean of every summary column over its episodes (scenarios x
    seeds), best objective first. Descriptive: the intervals are the aggregates' (window bootstrap)."""
    columns = [c for _, c, _ in SUMMARY_COLUMNS]
    return results[results["beta"] == beta].groupby("agent")[columns].mean().sort_values("objective", ascending=False)


def write_summary(
    out: Path,
    results: pd.DataFrame,
    command: str,
    protocol: Protocol,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
) -> str:
    """Write ``summary.md`` into ``out`` and return its text; ``reps`` and ``seed``: the bootstrap's
    resamples and seed (recorded in the text)."""
    columns = list(SUMMARY_COLUMNS)
    if results["window_violation_pct"].isna().all():  # the fast simulator does not measure it
        columns = [c for c in columns if c[1] != "window_violation_pct"]
    seeds = sorted(set(results["seed"]))
    scenarios = sorted(set(results["scenario"]))
    lines = [
        f"# InfAdapter-Gym leaderboard: protocol `{protocol.name}`",
        "",
        f"Command: `{command}`. Scenarios ({', '.join(scenarios)}) and seeds "
        f"({', '.join(map(str, seeds))}); {len(results)} rows in `{CSV_NAME}`. "
        "Protocol: `infadapter_env/leaderboard/protocol.py`.",
        "",
        *aggregates_note(normaliser_of(results), len(scenarios), reps, seed),
    ]
    for beta in sorted(set(results["beta"])):
        aggregates = beta_aggregates(results, beta, reps=reps, seed=seed)
        lines += ["", f"## beta = {beta:g}", "", *beta_table(ranking(results, beta), aggregates, columns)]
    lines += ["", *pareto_section(results)]
    lines += ["", *headline(results, protocol)]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def aggregates_note(normaliser: str | None, n_scenarios: int, reps: int, seed: int) -> list[str]:
    """How the scores, attainments, intervals and ranks are computed, and with what (reproducibility)."""
    level = f"{100 * CI_LEVEL:g} %"
    if normaliser is None:
        score = (
            "Score: the raw objective (no normaliser's rows: the protocol has no oracle, or it was not played), on "
            "one scale across scenarios only as far as their loads allow."
        )
    else:
        score = (
            f"Score: each episode's objective over `{normaliser}`'s on the same (scenario, beta, seed), from a "
            f"floor of {FLOOR:g} (an empty cluster: nothing served, nothing paid); 1 matches `{normaliser}`, which "
            "plans with the coming arrivals but is not an upper bound. The rows keep the raw objective (the "
            "`objective` column)."
        )
    over = (
        "scenarios drawn with replacement (the same draw for every agent: paired over windows), and the seeds drawn "
        "within each drawn scenario"
        if n_scenarios > 1
        else "one scenario: only the seeds are resampled, so the intervals say nothing about other windows"
    )
    return [
        score,
        f"SLO attainment: the P99 SLO holds where at most {100 * SLO_MET_LATE_SHARE:g} % of requests were late or "
        "dropped. `intervals`: the mean share of an episode's decision intervals in which it held; `episodes`: the "
        f"share of episodes over which it held. An agent meets the SLO when its interval attainment is at least "
        f"{100 * ATTAINMENT_TOLERANCE:g} %.",
        "Ranking rule: the agents that meet the SLO first, then those that do not, so that no agent ranks above "
        "another only by violating the SLO more; within each group by the interquartile mean (IQM) of the score. A "
        "rank is one number where the agent's paired IQM difference with every other agent of its group excludes 0, "
        "else the range of ranks those differences allow; agent A is called above B only where the interval of "
        "IQM(A) - IQM(B) lies above 0.",
        f"Intervals ({level}): rliable {rliable_version()}'s stratified bootstrap with `task_bootstrap=True`, {over}; "
        f"{reps} resamples, seed {seed} (`infadapter_env/leaderboard/aggregate.py`). P(> {REFERENCE_AGENT}): the "
        f"probability that the agent's score beats {REFERENCE_AGENT}'s on a scenario (a seed of each drawn at random, "
        "ties counting one half), averaged over the scenarios. The other columns are plain means over the episodes.",
    ]


def interval_cell(interval: Interval | None, digits: int, scale: float = 1.0, signed: bool = False) -> str:
    if interval is None:
        return "-"
    fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
    point, low, high = (scale * x for x in (interval.point, interval.low, interval.high))
    return f"{fmt.format(point)} [{fmt.format(low)}, {fmt.format(high)}]"


def beta_table(means: pd.DataFrame, aggregates: BetaAggregates, columns: list[tuple[str, str, str]]) -> list[str]:
    """One beta's table (the ranking rule's order; agents without a complete seed last, by mean) and its notes."""
    ordered = aggregates.order
    rest = [a for a in means.index if a not in ordered]
    reference = aggregates.reference
    versus = reference in aggregates.iqm
    header = "| rank | agent | SLO met: intervals % [95 % CI] | episodes % [95 % CI] | IQM score [95 % CI] | "
    header += f"IQM - {reference} [95 % CI] | P(> {reference}) [95 % CI] | " if versus else ""
    lines = [header + " | ".join(h for h, _, _ in columns) + " |"]
    lines.append("|---" * (len(columns) + 5 + 2 * versus) + "|")
    for agent in [*ordered, *rest]:
        low, high = aggregates.ranks.get(agent, (0, 0))
        rank = "-" if agent in rest else (str(low) if low == high else f"{low}-{high}")
        cells = [
            rank,
            agent,
            interval_cell(aggregates.intervals_met.get(agent), 2, 100),
            interval_cell(aggregates.episodes_met.get(agent), 0, 100),
            interval_cell(aggregates.iqm.get(agent), 4),
        ]
        if versus:
            cells.append(interval_cell(aggregates.versus_reference(agent), 4, signed=True))
            cells.append(interval_cell(aggregates.improvement.get(agent), 2))
        cells += [fmt.format(means.loc[agent, col]) for _, col, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    scores = aggregates.scores
    notes = [
        f"Meet the SLO (interval attainment at least {100 * ATTAINMENT_TOLERANCE:g} %): "
        f"{', '.join(aggregates.meets) or 'none'}; below it, ranked after them: "
        f"{', '.join(aggregates.misses) or 'none'}."
    ]
    if scores.left_out_scenarios:
        notes.append(
            f"Scenarios left out of the aggregates (not played by every agent at this beta): "
            f"{', '.join(scores.left_out_scenarios)}."
        )
    if scores.left_out_seeds:
        notes.append(
            f"Seeds left out of the aggregates (some agent lacks a scenario at them): "
            f"{', '.join(map(str, scores.left_out_seeds))}."
        )
    if scores.left_out_agents:
        notes.append(
            f"No complete episodes in common with the others (no score, no rank): {', '.join(scores.left_out_agents)}."
        )
    if versus:
        notes.append(against_reference(aggregates))
    elif aggregates.iqm:
        notes.append(f"No comparison with `{reference}`: it has no complete seed at this beta.")
    return [*lines, *(["", *notes] if notes else [])]


def against_reference(aggregates: BetaAggregates) -> str:
    """Which agents' paired IQM differences with the reference lie wholly above or below 0."""
    reference = aggregates.reference
    others = [a for a in aggregates.order if a != reference]
    above = [a for a in others if aggregates.differences[(a, reference)].low > 0]
    below = [a for a in others if aggregates.differences[(reference, a)].low > 0]
    tied = [a for a in others if a not in above and a not in below]
    return (
        f"Against {reference} (paired IQM differences): above: {', '.join(above) or 'none'}; "
        f"not separated: {', '.join(tied) or 'none'}; below: {', '.join(below) or 'none'}."
    )


def pareto_section(results: pd.DataFrame) -> list[str]:
    """Per contender: its Pareto front over the betas (``pareto``)."""
    lines = [
        "## Pareto fronts over the beta sweep",
        "",
        "Per agent, one operating point per beta (effective accuracy, mean cores, SLO violation %; means over "
        "scenarios and seeds); the front: the points none of its other points dominates (maximise accuracy, minimise "
        "cores and violations). No hypervolume: any reference box weighs the three axes arbitrarily "
        "(`infadapter_env/leaderboard/pareto.py` says why). `pareto.png` draws the points.",
        "",
        "| agent | points on the front | betas on the front |",
        "|---|---|---|",
    ]
    for front in pareto_fronts(results, budget_of(results)):
        betas = ", ".join(f"{b:g}" for b in front.front_betas)
        lines.append(f"| {front.agent} | {len(front.front_betas)} of {len(front.points)} | {betas} |")
    return lines
