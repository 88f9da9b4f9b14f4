"""Training choices settled by experiment: each arm trained on several seeds, scored on held-out windows.

    infadapter compare-training --experiment over-budget    (PPO: over_budget "reject" against "scale")
    infadapter compare-training --experiment budget-trace   (MaskablePPO with masks against PPO with
                                                             "scale", under the tenant-then-failure budget trace)

An experiment (``EXPERIMENTS``) names its arms by their ``infadapter train`` arguments. Every arm is
trained with ``--seeds`` into ``--runs/<experiment>/<arm>`` (an arm whose ``agent.json`` is there
already is reused, so an interrupted run resumes), then every training seed of every arm plays
the first ``--windows`` held-out test windows of the default protocol (``TEST_WINDOW_STARTS``,
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
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from infadapter_env.core.objective import PAPER_ALPHA, PAPER_GAMMA
from infadapter_env.core.rollout import play
from infadapter_env.leaderboard.protocol import EPISODE_S, TEST_WINDOW_STARTS
from infadapter_env.options import option
from infadapter_env.provenance import git_commit, versions
from infadapter_scripts.arguments import parse

BUDGET_TRACE = "tenant-then-failure"


@dataclass(frozen=True)
class Experiment:
    question: str
    arms: dict[str, list[str]]  # arm name: its ``infadapter train`` arguments (less seeds, steps, out)
    env: dict[str, Any] = field(default_factory=dict)  # the env the yardstick plays in


EXPERIMENTS = {
    "over-budget": Experiment(
        "Which over-budget rule PPO learns better with, on the fixed 20-core budget: an action over "
        'the budget rejected (the previous deployment kept, "reject") or scaled down to fit ("scale")',
        {
            "ppo-reject": ["--algo", "ppo", "--over-budget", "reject"],
            "ppo-scale": ["--algo", "ppo", "--over-budget", "scale"],
        },
    ),
    "budget-trace": Experiment(
        f"Under a time-varying budget (budget_trace={BUDGET_TRACE!r}): MaskablePPO, whose masks exclude "
        "the deployments over the cores available, against PPO whose over-budget actions are scaled to fit",
        {
            "maskable-ppo": ["--algo", "maskable-ppo", "--over-budget", "reject", "--budget-trace", BUDGET_TRACE],
            "ppo-scale": ["--algo", "ppo", "--over-budget", "scale", "--budget-trace", BUDGET_TRACE],
        },
        {"budget_trace": BUDGET_TRACE},
    ),
}


@dataclass
class Args:
    """Train the arms of an experiment on several seeds and score them on held-out windows."""

    experiment: str = option("over-budget", f"one of {', '.join(EXPERIMENTS)}")
    seeds: list[int] = option([0, 1, 2], "training seeds of every arm")
    total_timesteps: int = option(150_000, "environment steps each seed trains for")
    beta: float = option(0.05, "the beta of training and scoring")
    windows: int = option(30, "held-out test windows scored (the first of TEST_WINDOW_STARTS)")
    simulator: str = option("request", "simulator of the scoring episodes (fast or request)")
    reference: str = option("infadapter", "the yardstick agent, played in the experiment's env")
    runs: str = option("runs/compare", "where the arms are trained (<runs>/<experiment>/<arm>)")
    out: str = option("results/training", "output folder (a subfolder per experiment)")


def train_arm(args: Args, folder: Path, train_args: list[str]) -> None:
    """Train an arm's seeds into ``folder`` unless its ``agent.json`` is there already."""
    from infadapter_scripts import train_rl

    if (folder / "agent.json").is_file():
        check_trained(args, folder)
        print(f"{folder}: trained already (agent.json), reused", file=sys.stderr, flush=True)
        return
    argv = [
        *train_args,
        "--beta", f"{args.beta:g}",
        "--seeds", *map(str, args.seeds),
        "--total-timesteps", str(args.total_timesteps),
        "--out", str(folder),
        "--log-dir", str(folder / "logs"),
    ]  # fmt: skip
    if train_rl.main(argv) != 0:
        raise RuntimeError(f"training {folder} failed: infadapter train {' '.join(argv)}")


def check_trained(args: Args, folder: Path) -> None:
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


def score(agent: Any, kwargs: dict[str, Any], args: Args) -> list[dict[str, Any]]:
    """One episode per held-out window: its objective, SLO violations and mean cores."""
    rows = []
    for k, start in enumerate(TEST_WINDOW_STARTS[: args.windows], start=1):
        window = {"scenario": "test", "episode_length_s": EPISODE_S, "window_start_s": start}
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


def evaluate(args: Args, experiment: Experiment, runs: Path, out: Path) -> pd.DataFrame:
    import infadapter_agents
    from infadapter_agents.learned import LearnedAgent, training_rules

    frames = []
    for arm in experiment.arms:
        for seed in args.seeds:
            checkpoint = runs / arm / f"seed{seed}"
            rules = training_rules(checkpoint)  # scored under the rules it trained under
            rows = saved_rows(
                out / f"rows-{arm}-seed{seed}.csv", lambda c=checkpoint, r=rules: score(LearnedAgent(c), r, args)
            )
            frames.append(rows.assign(arm=arm, seed=seed))
    reference = saved_rows(
        out / f"rows-{args.reference}.csv",
        lambda: score(infadapter_agents.make(args.reference), dict(experiment.env), args),
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


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)  # one thread: torch's threads would fight the simulator for the cores
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(Args, argv, prog="infadapter compare-training")
    if args.experiment not in EXPERIMENTS:
        print(
            f"infadapter compare-training: error: unknown experiment {args.experiment!r}; "
            f"valid: {', '.join(EXPERIMENTS)}",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.windows <= len(TEST_WINDOW_STARTS):
        print(f"infadapter compare-training: error: --windows must be 1..{len(TEST_WINDOW_STARTS)}", file=sys.stderr)
        return 2
    experiment = EXPERIMENTS[args.experiment]
    runs, out = Path(args.runs) / args.experiment, Path(args.out) / args.experiment
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("seeds", "total_timesteps", "beta", "windows", "simulator", "reference")}
    try:
        check_settings(out, settings)
        for arm, train_args in experiment.arms.items():
            train_arm(args, runs / arm, train_args)
    except ValueError as exc:
        print(f"infadapter compare-training: error: {exc}", file=sys.stderr)
        return 2
    rows = evaluate(args, experiment, runs, out)
    rows.to_csv(out / "rows.csv", index=False)
    summary = summarise(rows, experiment, args.reference)
    command = "infadapter compare-training " + " ".join(argv)
    header = (
        f"Command: `{command}` (commit {git_commit()}). Each arm: seeds {args.seeds}, "
        f"{args.total_timesteps:,} steps each, beta {args.beta:g}; scored on the first {args.windows} held-out "
        f"test windows (1,260 s), {args.simulator} simulator, seed 0, in the rules it trained under; "
        f"{args.reference} on the same windows as a yardstick."
    )
    (out / "table.md").write_text(markdown(summary, experiment, header))
    from infadapter_agents.training import learning_curves

    learning_curves(
        {arm: [runs / arm / f"seed{s}" / "progress.csv" for s in args.seeds] for arm in experiment.arms},
        out / "learning_curves.png",
        f"{args.experiment}: {len(args.seeds)} seeds per arm ({args.total_timesteps:,} steps each)",
    )
    record = (
        {
            "command": command,
            "commit": git_commit(),
            "versions": versions(),
            "experiment": args.experiment,
            "question": experiment.question,
            "arm_arguments": experiment.arms,
            "trained_by": {  # the commands that trained each arm (agent.json), and their CPU time per seed
                arm: {
                    key: json.loads((runs / arm / "agent.json").read_text()).get(key)
                    for key in ("run_by", "train_cpu_s")
                }
                for arm in experiment.arms
            },
            "settings": settings,
            "windows": list(TEST_WINDOW_STARTS[: args.windows]),
        }
        | summary
    )
    (out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(summary, experiment, header))
    print(f"results: {out}; mean objective per seed: " + ", ".join(
        f"{arm} {statistics.fmean(e['seed_objectives'].values()):.4f}" for arm, e in summary["arms"].items()
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
