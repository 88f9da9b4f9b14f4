"""Training choices settled by experiment (``infadapter compare-training``): each arm trained on
several seeds, scored on validation windows.

    infadapter compare-training --experiment over-budget    (PPO: over_budget "reject" against "scale")
    infadapter compare-training --experiment budget-trace   (MaskablePPO with masks against PPO with
                                                             "scale", under the tenant-then-failure budget trace)

An experiment (``EXPERIMENTS``) names its arms by their ``infadapter train`` arguments. Every arm is
trained with ``--seeds`` into ``--runs/<experiment>/<arm>`` (an arm whose ``agent.json`` is there
already is reused, so an interrupted run resumes), then every training seed of every arm plays
the first ``--windows`` validation windows (``VALIDATION_WINDOW_STARTS``, never the sealed test split;
1,260 s each) at the training beta, in the rules it was trained under (``over_budget``,
``budget_trace``), with the ``--simulator`` (request-level by default, as the leaderboard).
InfAdapter plays the same windows under the experiment's env as a yardstick.

Writes to ``--out/<experiment>``: ``rows.csv`` (one row per arm, training seed and window),
``table.md`` (per arm: the mean objective of each training seed, their mean and range, SLO
violations, cores, and the verdict: an arm learns better only where every seed of it beats every
seed of the other), ``learning_curves.png`` (mean and min-max over seeds per arm) and
``summary.json`` (the command, commit, versions, settings and the numbers). Rows are saved per
(arm, seed) as they finish (``rows-<arm>-seed<k>.csv``) and reused, so an interrupted evaluation
resumes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from infadapter_agents import make
from infadapter_agents.learned.agent import LearnedAgent, training_rules
from infadapter_agents.learned.training import TrainingOptions, learning_curves, train_seeds
from infadapter_env.core.objective import PAPER_ALPHA, PAPER_GAMMA
from infadapter_env.core.rollout import play
from infadapter_env.options import option
from infadapter_env.provenance import git_commit, versions


class Windows(NamedTuple):
    """The validation windows an experiment scores on: start seconds into the test split, and their length."""

    starts: Sequence[int]
    length_s: int


BUDGET_TRACE = "tenant-then-failure"


@dataclass(frozen=True)
class Experiment:
    question: str
    arms: dict[str, dict[str, Any]]  # arm name: its ``TrainingOptions`` (less seeds, steps, beta, out)
    env: dict[str, Any] = field(default_factory=dict)  # the env the yardstick plays in


EXPERIMENTS = {
    "over-budget": Experiment(
        "Which over-budget rule PPO learns better with, on the fixed 20-core budget: an action over "
        'the budget rejected (the previous deployment kept, "reject") or scaled down to fit ("scale")',
        {
            "ppo-reject": {"algo": "ppo", "over_budget": "reject"},
            "ppo-scale": {"algo": "ppo", "over_budget": "scale"},
        },
    ),
    "budget-trace": Experiment(
        f"Under a time-varying budget (budget_trace={BUDGET_TRACE!r}): MaskablePPO, whose masks exclude "
        "the deployments over the cores available, against PPO whose over-budget actions are scaled to fit",
        {
            "maskable-ppo": {"algo": "maskable-ppo", "over_budget": "reject", "budget_trace": BUDGET_TRACE},
            "ppo-scale": {"algo": "ppo", "over_budget": "scale", "budget_trace": BUDGET_TRACE},
        },
        {"budget_trace": BUDGET_TRACE},
    ),
}


@dataclass
class ExperimentOptions:
    """Train the arms of an experiment on several seeds and score them on validation windows."""

    experiment: str = option("over-budget", f"one of {', '.join(EXPERIMENTS)}")
    seeds: list[int] = option([0, 1, 2], "training seeds of every arm")
    total_timesteps: int = option(150_000, "environment steps each seed trains for")
    beta: float = option(0.05, "the beta of training and scoring")
    windows: int = option(30, "validation windows scored (the first of VALIDATION_WINDOW_STARTS)")
    simulator: str = option("request", "simulator of the scoring episodes (fast or request)")
    reference: str = option("infadapter", "the yardstick agent, played in the experiment's env")
    runs: str = option("runs/compare", "where the arms are trained (<runs>/<experiment>/<arm>)")
    out: str = option("results/training", "output folder (a subfolder per experiment)")


def train_arm(args: ExperimentOptions, folder: Path, arm: dict[str, Any]) -> None:
    """Train an arm's seeds into ``folder`` unless its ``agent.json`` is there already."""
    if (folder / "agent.json").is_file():
        check_trained(args, folder)
        print(f"{folder}: trained already (agent.json), reused", file=sys.stderr, flush=True)
        return
    options = replace(
        TrainingOptions(**arm),
        beta=args.beta,
        seeds=list(args.seeds),
        total_timesteps=args.total_timesteps,
        out=str(folder),
        log_dir=str(folder / "logs"),
    )
    flags = [f"--{key.replace('_', '-')} {value}" for key, value in arm.items()]
    command = (
        f"infadapter train {' '.join(flags)} --beta {args.beta:g} --seeds {' '.join(map(str, args.seeds))} "
        f"--total-timesteps {args.total_timesteps} --out {folder} --log-dir {folder / 'logs'}"
    )
    train_seeds(options, command)


def check_trained(args: ExperimentOptions, folder: Path) -> None:
    """Refuse to reuse an arm trained with other seeds, steps or beta than these."""
    seeds = json.loads((folder / "agent.json").read_text())["seeds"]
    if seeds != [f"seed{s}" for s in args.seeds]:
        raise ValueError(f"{folder} holds seeds {seeds}, not {args.seeds}: use another --runs folder")
    for seed in seeds:
        trained = json.loads((folder / seed / "meta.json").read_text())["args"]
        wanted = {"total_timesteps": args.total_timesteps, "beta": args.beta}
        other = {k: trained.get(k) for k in wanted if trained.get(k) != wanted[k]}
        if other:
            raise ValueError(f"{folder / seed} was trained with {other}, not {wanted}: use another --runs folder")


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """The scores in ``out`` are reused only if they were made with these settings."""
    path = out / "settings.json"
    if path.is_file():
        before = json.loads(path.read_text())
        if before != settings:
            raise ValueError(f"{out} holds scores made with {before}, not {settings}: use another --out or delete it")
    path.write_text(json.dumps(settings, indent=2) + "\n")


def score(agent: Any, kwargs: dict[str, Any], args: ExperimentOptions, windows: Windows) -> list[dict[str, Any]]:
    """One episode per validation window: its objective, SLO violations and mean cores."""
    rows = []
    for k, start in enumerate(windows.starts, start=1):
        window = {"scenario": "test", "episode_length_s": windows.length_s, "window_start_s": start}
        weights = {"alpha": PAPER_ALPHA, "beta": args.beta, "gamma": PAPER_GAMMA, "simulator": args.simulator}
        metrics = play(agent, window | weights | kwargs, seed=0)[0]
        rows.append(
            {"window": f"test{k}"} | {key: metrics[key] for key in ("objective", "slo_violation_pct", "mean_cores")}
        )
    return rows


def saved_rows(path: Path, make: Any) -> pd.DataFrame:
    """Rows from ``path`` if an earlier run left them, else ``make()``'s, saved there."""
    if path.is_file():
        return pd.read_csv(path)
    started = time.time()
    rows = pd.DataFrame(make())
    rows.to_csv(path, index=False)
    print(f"{path.name}: {len(rows)} episodes in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return rows


def evaluate(args: ExperimentOptions, experiment: Experiment, runs: Path, out: Path, windows: Windows) -> pd.DataFrame:
    """Every training seed of every arm, and the yardstick, on the validation windows."""
    frames = []
    for arm in experiment.arms:
        for seed in args.seeds:
            checkpoint = runs / arm / f"seed{seed}"
            rules = training_rules(checkpoint)  # scored under the rules it trained under
            rows = saved_rows(
                out / f"rows-{arm}-seed{seed}.csv",
                lambda c=checkpoint, r=rules: score(LearnedAgent(c), r, args, windows),
            )
            frames.append(rows.assign(arm=arm, seed=seed))
    reference = saved_rows(
        out / f"rows-{args.reference}.csv",
        lambda: score(make(args.reference), dict(experiment.env), args, windows),
    )
    frames.append(reference.assign(arm=args.reference, seed=-1))
    return pd.concat(frames, ignore_index=True)


def summarise(rows: pd.DataFrame, experiment: Experiment, reference: str) -> dict[str, Any]:
    """Per arm: each seed's mean over the windows, their mean and range; the verdict between arms."""
    arms: dict[str, Any] = {}
    for arm, group in rows.groupby("arm", sort=False):
        per_seed = group.groupby("seed")["objective"].mean()
        arms[str(arm)] = {
            "seed_objectives": {int(s): round(float(v), 5) for s, v in per_seed.items()},
            "objective": round(float(per_seed.mean()), 5),
            "min": round(float(per_seed.min()), 5),
            "max": round(float(per_seed.max()), 5),
            "slo_violation_pct": round(float(group["slo_violation_pct"].mean()), 3),
            "mean_cores": round(float(group["mean_cores"].mean()), 3),
        }
    first, second = list(experiment.arms)
    a, b = arms[first], arms[second]
    if a["min"] > b["max"]:
        verdict = f"{first} learns better: every seed of it beats every seed of {second}"
        better: str | None = first
    elif b["min"] > a["max"]:
        verdict = f"{second} learns better: every seed of it beats every seed of {first}"
        better = second
    else:
        leader = first if a["objective"] >= b["objective"] else second
        verdict = f"not separated by these seeds (their ranges overlap); {leader} is ahead by the mean"
        better = None
    return {"arms": arms, "verdict": verdict, "better": better, "reference": reference}


def markdown(summary: dict[str, Any], experiment: Experiment, header: str) -> str:
    lines = [
        header,
        "",
        f"Question: {experiment.question}.",
        "",
        "| arm | objective per training seed | mean [min, max] over seeds | SLO viol. % | mean cores |",
        "|---|---|---|---|---|",
    ]
    for arm, e in summary["arms"].items():
        seeds = ", ".join(f"{v:.4f}" for v in e["seed_objectives"].values()) if arm != summary["reference"] else "-"
        lines.append(
            f"| {arm} | {seeds} | {e['objective']:.4f} [{e['min']:.4f}, {e['max']:.4f}] | "
            f"{e['slo_violation_pct']:.2f} | {e['mean_cores']:.2f} |"
        )
    lines += ["", f"Verdict: {summary['verdict']}.", ""]
    return "\n".join(lines)


def run_experiment(args: ExperimentOptions, windows: Windows, command: str) -> str:
    """Train the arms of ``args.experiment`` (or reuse them), score them on ``windows``, write the
    results into ``args.out/<experiment>`` and return the table (markdown). Raises ``ValueError``
    where reused runs or scores were made with other settings."""
    experiment = EXPERIMENTS[args.experiment]
    runs, out = Path(args.runs) / args.experiment, Path(args.out) / args.experiment
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("seeds", "total_timesteps", "beta", "windows", "simulator", "reference")}
    check_settings(out, settings)
    for arm, arm_options in experiment.arms.items():
        train_arm(args, runs / arm, arm_options)
    rows = evaluate(args, experiment, runs, out, windows)
    rows.to_csv(out / "rows.csv", index=False)
    summary = summarise(rows, experiment, args.reference)
    header = (
        f"Command: `{command}` (commit {git_commit()}). Each arm: seeds {args.seeds}, "
        f"{args.total_timesteps:,} steps each, beta {args.beta:g}; scored on the first {args.windows} "
        f"validation windows (1,260 s), {args.simulator} simulator, seed 0, in the rules it trained under; "
        f"{args.reference} on the same windows as a yardstick."
    )
    (out / "table.md").write_text(markdown(summary, experiment, header))
    learning_curves(
        {arm: [runs / arm / f"seed{s}" / "progress.csv" for s in args.seeds] for arm in experiment.arms},
        out / "learning_curves.png",
        f"{args.experiment}: {len(args.seeds)} seeds per arm ({args.total_timesteps:,} steps each)",
    )
    record = {
        "command": command,
        "commit": git_commit(),
        "versions": versions(),
        "experiment": args.experiment,
        "question": experiment.question,
        "arm_arguments": experiment.arms,
        "trained_by": {  # the commands that trained each arm (agent.json), and their CPU time per seed
            arm: {
                key: json.loads((runs / arm / "agent.json").read_text()).get(key) for key in ("run_by", "train_cpu_s")
            }
            for arm in experiment.arms
        },
        "settings": settings,
        "windows": list(windows.starts),
    } | summary
    (out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    return markdown(summary, experiment, header)
