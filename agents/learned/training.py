"""Training stable-baselines3 policies on InfAdapter-v0: one seed, several seeds, sweeps.

    from infadapter_agents.learned.training import TrainingOptions, train, train_seeds

    meta = train(TrainingOptions(algo="ppo", seed=0, total_timesteps=50_000, out="runs/ppo"), "my notebook")
    train_seeds(TrainingOptions(algo="a2c", seeds=[0, 1, 2], out="runs/a2c"), "my notebook")

``infadapter train`` (``infadapter_scripts.train_rl``) is the command line over this module: its
flags are the fields of ``TrainingOptions``, and its docstring describes the checkpoint folders and
the backends. ``train`` trains one checkpoint (policy, observation statistics, ``meta.json`` with
its command, seed, versions, commit, wall time and its score on training-day windows,
``evaluate``); ``train_seeds`` trains every seed of a run or every (algorithm, beta, seed) of a
sweep, here, in processes or on Ray, and ``collect`` chooses the seed an agent plays by its
training-day score (never by test results). ``load_for_training`` reopens a checkpoint to train on.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from infadapter_agents.learned.agent import AGENT_FILE, LearnedAgent, training_rules
from infadapter_agents.learned.sb3_env import InfAdapterSB3VecEnv, PolicyFeatures
from infadapter_env.core.objective import PAPER_ALPHA, PAPER_GAMMA
from infadapter_env.core.rollout import play
from infadapter_env.core.settings import EnvSettings
from infadapter_env.options import option
from infadapter_env.provenance import git_commit, relative_to_repo, versions
from infadapter_env.world.traces import scenario as load_scenario
from infadapter_env.world.traces import valid_window_starts

ALGOS = {"ppo": "cores", "a2c": "cores", "maskable-ppo": "deployment"}
TRAIN_EVAL_WINDOWS = 12  # training-day windows every checkpoint is scored on (and its seed chosen by)
TRAIN_EVAL_SEED = 7


@dataclass
class TrainingOptions:
    """Train an SB3 policy on InfAdapter-v0."""

    algo: str = option("ppo", f"one of {', '.join(ALGOS)}")
    seed: int = option(0, "seed of the env windows, the policy and torch")
    total_timesteps: int = option(300_000, "environment steps to train for")
    num_envs: int = option(16, "environments in the batched env")
    episode_length_s: int = option(1260, "length of the training windows (the paper slice is 1,260 s)")
    beta: float = option(0.05, "resource-cost weight of the training reward (alpha 1, gamma 0.001)")
    betas: list[float] = option(
        [], "train across betas: each episode draws its beta from these (default: none, --beta)"
    )
    observe_weights: bool = option(False, "the policy observes the objective's weights (env setting observe_weights)")
    features: list[str] = option([], "features appended to what the policy sees (forecast: the paper LSTM's forecast)")
    over_budget: str = option("scale", "an action over the budget: scale (fit it; learns better: README) or reject")
    budget_trace: str = option("", "cores available per interval: a named pattern or a file (default: none, all cores)")
    profile: str = option("", "a capacity profile of your own (default: the shipped one); see gym.make(profile=...)")
    variants: str = option("", "its variants file (default: variants.csv beside the profile, else the shipped one)")
    discount: float = option(0.9, "discount factor (decisions 30 s apart; the objective is per interval)")
    learning_rate: float = option(3e-4, "optimiser learning rate")
    n_steps: int = option(64, "rollout length per environment between updates")
    hidden: int = option(64, "units in each of the two hidden layers of policy and value networks")
    out: str = option(
        "", "checkpoint folder (default: runs/<run name>; agents/checkpoints/<algo> replaces a shipped one)"
    )
    log_dir: str = option("results/train", "where the training logs and learning curve go")
    evaluate: bool = option(True, "score the policy on training-day windows after training")
    seeds: list[int] = option([], "train these seeds into --out/seed<k> and choose the one the agent plays")
    collect_only: bool = option(False, "with --seeds: only choose the seed and draw the curve from the seed folders")
    algos: list[str] = option([], "a sweep: train each of these algorithms (with --sweep-betas, each at each beta)")
    sweep_betas: list[float] = option([], "a sweep: one policy per beta, into --out/<algo>__beta<b>/seed<k>")
    backend: str = option("serial", "where --seeds and sweeps train: serial (here), local (processes) or ray")
    workers: int = option(2, "parallel trainings with --backend local or ray")
    address: str = option("", "with --backend ray: a running cluster's address (default: start one here)")


def make_model(args: TrainingOptions, venv: Any) -> Any:
    policy_kwargs = {"net_arch": {"pi": [args.hidden, args.hidden], "vf": [args.hidden, args.hidden]}}
    common: dict[str, Any] = {
        "seed": args.seed,
        "learning_rate": args.learning_rate,
        "gamma": args.discount,
        "n_steps": args.n_steps,
        "policy_kwargs": policy_kwargs,
        "device": "cpu",
        "verbose": 0,
    }
    if args.algo == "ppo":
        from stable_baselines3 import PPO

        return PPO("MlpPolicy", venv, batch_size=256, **common)
    if args.algo == "a2c":
        from stable_baselines3 import A2C

        return A2C("MlpPolicy", venv, **common | {"n_steps": max(args.n_steps // 8, 5)})
    from sb3_contrib import MaskablePPO

    return MaskablePPO("MlpPolicy", venv, batch_size=256, **common)


def ProgressCallback(bar: tqdm) -> Any:
    """An SB3 callback that advances ``bar`` by the environment steps of each call."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Progress(BaseCallback):
        def _on_step(self) -> bool:
            bar.update(min(self.training_env.num_envs, bar.total - bar.n))  # SB3 may overshoot by a rollout
            return True

    return _Progress()


def train(args: TrainingOptions, command: str) -> dict[str, Any]:
    """Train one policy (one algorithm, beta and seed) into ``args.out`` and return its ``meta.json``;
    ``command`` is recorded as the command that made it."""
    if args.algo not in ALGOS:
        raise ValueError(f"unknown algorithm {args.algo!r}; valid: {', '.join(ALGOS)}")
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    torch.set_num_threads(1)
    set_random_seed(args.seed)
    # the time in ms and the process: trainings of a sweep that start together log apart
    run_name = f"InfAdapter-v0__{args.algo}__{args.seed}__{int(time.time() * 1000)}-{os.getpid()}"
    log_dir = Path(args.log_dir) / run_name
    out = Path(args.out) if args.out else Path("runs") / run_name
    settings: dict[str, Any] = {
        "scenario": "train",
        "episode_length_s": args.episode_length_s,
        "action_mode": ALGOS[args.algo],
        "beta": args.beta,
    }
    if args.betas:
        settings["betas"] = tuple(args.betas)
    if args.observe_weights:
        settings["observe_weights"] = True
    settings["over_budget"] = args.over_budget
    if args.budget_trace:
        settings["budget_trace"] = args.budget_trace
    for key in ("profile", "variants"):  # a world of one's own (recorded as absolute paths)
        if getattr(args, key):
            settings[key] = str(Path(getattr(args, key)).expanduser().resolve())
    env = InfAdapterSB3VecEnv(args.num_envs, **settings)
    env.seed(args.seed)
    inner = PolicyFeatures(env, args.features) if args.features else env
    venv = VecNormalize(VecMonitor(inner), norm_obs=True, norm_reward=False)
    model = make_model(args, venv)
    model.set_logger(configure(str(log_dir), ["csv"]))
    started, cpu_started = time.time(), time.process_time()
    print(f"{run_name}: training {args.total_timesteps} steps on {args.num_envs} batched envs", flush=True)
    with tqdm(total=args.total_timesteps, desc=args.algo, unit="step", file=sys.stderr) as bar:
        model.learn(args.total_timesteps, callback=ProgressCallback(bar))
    wall_s, cpu_s = time.time() - started, time.process_time() - cpu_started

    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save(str(staging / "model.zip"))  # the whole algorithm: ALGO.load(...) then .learn(...) continues
    venv.training = False
    venv.save(str(staging / "vecnormalize.pkl"))  # statistics only: VecNormalize drops its envs when pickled
    meta: dict[str, Any] = {
        "algo": args.algo,
        "action_mode": ALGOS[args.algo],
        "command": command,
        "args": asdict(args) | {"out": relative_to_repo(out), "log_dir": args.log_dir},
        "train_env": settings | {"num_envs": args.num_envs, "env": "InfAdapter-v0 (batched)"},
        "features": list(args.features),
        "env_settings": EnvSettings.from_kwargs(**settings).recorded(),  # every setting, for LearnedAgent's check
        "train_wall_s": round(wall_s, 1),
        "train_cpu_s": round(cpu_s, 1),  # the process's CPU time: the wall time less other processes' share
        "versions": versions(),
        "git_commit": git_commit(),
        "run_name": run_name,
    }
    (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    if (log_dir / "progress.csv").is_file():  # the log ships with the policy
        shutil.copy(log_dir / "progress.csv", staging / "progress.csv")
        learning_curve([staging / "progress.csv"], staging / "learning_curve.png", run_name)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)  # the checkpoint appears whole or not at all
    if args.evaluate:
        meta["evaluation"] = evaluate(out, list(args.betas) or [args.beta])
        print(json.dumps(meta["evaluation"], indent=2))
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"checkpoint: {out} (trained in {wall_s:.0f} s); log: {log_dir}")
    return meta


def load_for_training(checkpoint: str | Path, num_envs: int = 16) -> tuple[Any, Any]:
    """A checkpoint's whole SB3 algorithm and a training env like the one it was trained in (its
    settings, features and observation statistics), to train on: ``model.learn(n, reset_num_timesteps=False)``."""
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from infadapter_agents.learned.agent import algorithm_class, checkpoint_folder

    folder = checkpoint_folder(checkpoint)
    meta = json.loads((folder / "meta.json").read_text())
    if not (folder / "model.zip").is_file():
        raise ValueError(f"{folder} holds the policy only (policy.zip): it cannot train on; retrain it")
    env = InfAdapterSB3VecEnv(num_envs, **_train_settings(meta))
    inner = PolicyFeatures(env, meta.get("features", [])) if meta.get("features") else env
    venv = VecNormalize.load(str(folder / "vecnormalize.pkl"), VecMonitor(inner))
    venv.training = True
    model = algorithm_class(meta["algo"]).load(str(folder / "model.zip"), env=venv, device="cpu")
    return model, venv


def _train_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """The env settings of a checkpoint's training env (``train_env`` less the batching)."""
    settings = {k: v for k, v in meta["train_env"].items() if k not in ("num_envs", "env")}
    if settings.get("betas") is not None:
        settings["betas"] = tuple(settings["betas"])
    return settings


def train_eval_windows() -> list[int]:
    """The training-day windows every checkpoint is scored on (start seconds into the train split)."""
    starts = valid_window_starts(load_scenario("train"), 1260)
    chosen = np.random.default_rng(TRAIN_EVAL_SEED).choice(starts, TRAIN_EVAL_WINDOWS, replace=False)
    return sorted(int(s) for s in chosen)


def evaluate(checkpoint: Path, betas: list[float]) -> dict[str, Any]:
    """Mean objective and SLO violations on training-day windows (``train_eval_windows``), fast
    simulator, seed 0, at every training beta: the score a seed is chosen by."""
    agent = LearnedAgent(checkpoint)  # loaded once; play() resets it for every episode
    rules = training_rules(checkpoint)  # the rules of the world it trained in
    per_beta: dict[str, dict[str, float]] = {}
    for beta in betas:
        rows = []
        for start in train_eval_windows():
            kwargs = {"scenario": "train", "episode_length_s": 1260, "window_start_s": start} | rules
            rows.append(play(agent, kwargs | {"alpha": PAPER_ALPHA, "beta": beta, "gamma": PAPER_GAMMA}, seed=0)[0])
        per_beta[f"{beta:g}"] = {
            key: round(statistics.fmean(r[key] for r in rows), 5)
            for key in ("objective", "slo_violation_pct", "mean_cores")
        }
    mean = round(statistics.fmean(r["objective"] for r in per_beta.values()), 5)
    return {
        "windows": f"{TRAIN_EVAL_WINDOWS} training-day windows of 1,260 s (training.train_eval_windows)",
        "betas": per_beta,
        "mean_objective": mean,
    }


def learning_curve(progress: list[Path], png: Path, title: str) -> Path | None:
    """Mean reward per decision against environment steps from SB3 ``progress.csv`` logs: the
    curve of one run, or the mean and the min-max band of several seeds."""
    return learning_curves({"": progress}, png, title)


def learning_curves(groups: dict[str, list[Path]], png: Path, title: str) -> Path | None:
    """``learning_curve`` for several labelled groups of runs on one figure (each: one curve, or
    the mean and min-max band of its seeds)."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = False
    for label, progress in groups.items():
        curves = []
        for path in progress:
            if not path.is_file():
                continue
            with path.open(newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if r.get("rollout/ep_rew_mean")]
            if rows:
                steps = np.array([float(r["time/total_timesteps"]) for r in rows])
                reward = np.array([float(r["rollout/ep_rew_mean"]) / float(r["rollout/ep_len_mean"]) for r in rows])
                curves.append((steps, reward))
        if not curves:
            continue
        drawn = True
        prefix = f"{label}: " if label else ""
        if len(curves) == 1:
            ax.plot(*curves[0], label=prefix + "mean reward per decision (episode mean)")
            continue
        grid = curves[0][0][curves[0][0] <= min(c[0][-1] for c in curves)]
        values = np.stack([np.interp(grid, steps, reward) for steps, reward in curves])
        (line,) = ax.plot(grid, values.mean(axis=0), label=prefix + "mean over seeds")
        band = f"{prefix}min-max of {len(curves)} seeds"
        ax.fill_between(grid, values.min(axis=0), values.max(axis=0), alpha=0.25, color=line.get_color(), label=band)
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("environment steps")
    ax.set_ylabel("reward per decision (episode mean)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


SWEEP_FIELDS = ("seeds", "collect_only", "seed", "out", "algos", "sweep_betas", "backend", "workers", "address")
# What a recorded command always spells out, default or not: a default that changes must not change
# what the command trains.
ALWAYS_RECORDED = ("algo", "beta", "over_budget", "total_timesteps")
BACKENDS = ("serial", "local", "ray")


def seed_command(args: TrainingOptions, seed: int, out: Path) -> list[str]:
    """The single-seed command line of one seed of a ``--seeds`` run or sweep (its non-default arguments)."""
    defaults = TrainingOptions()
    argv: list[str] = []
    for field in fields(TrainingOptions):
        value = getattr(args, field.name)
        skip = field.name in SWEEP_FIELDS
        if skip or (value == getattr(defaults, field.name) and field.name not in ALWAYS_RECORDED):
            continue
        if field.name == "beta" and args.betas:
            continue  # trained across --betas
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            argv += [flag, *(str(v) for v in value)]  # str: a float's shortest exact form
        else:
            argv += [flag, str(value)]
    return [*argv, "--seed", str(seed), "--out", str(out)]


@dataclass(frozen=True)
class TrainTask:
    """One training of a ``--seeds`` run or sweep: its arguments, its command line, the whole run's command."""

    args: TrainingOptions
    argv: list[str]
    run_by: str


def run_task(task: TrainTask) -> str:
    """Train one seed (in this process, a worker process or a Ray worker); returns its folder."""
    meta = train(task.args, "infadapter train " + shlex.join(task.argv))
    out = Path(task.args.out)
    meta["run_by"] = task.run_by  # the command that ran all the seeds
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "learning_curve.png").unlink(missing_ok=True)  # one curve for all the seeds
    return str(out)


def sweep_groups(args: TrainingOptions) -> dict[Path, tuple[str, float]]:
    """The agent folders of a run and the (algo, beta) each trains: ``--out`` itself for one
    algorithm at one beta, else ``--out/<algo>__beta<b>`` per pair."""
    out = Path(args.out)
    algos = args.algos or [args.algo]
    betas = args.sweep_betas or [args.beta]
    unknown = [a for a in algos if a not in ALGOS]
    if unknown:
        raise ValueError(f"unknown algorithm {unknown[0]!r}; valid: {', '.join(ALGOS)}")
    if len(algos) == 1 and len(betas) == 1:
        return {out: (algos[0], betas[0])}
    return {out / f"{algo}__beta{beta:g}": (algo, beta) for algo in algos for beta in betas}


def train_seeds(args: TrainingOptions, command: str) -> dict[str, Any]:
    """Train every seed of ``args.seeds`` (of every algorithm and beta of a sweep) on ``--backend``
    into ``<agent folder>/seed<k>``, then ``collect`` each agent folder."""
    if args.backend not in BACKENDS:
        raise ValueError(f"unknown backend {args.backend!r}; valid: {', '.join(BACKENDS)}")
    if args.collect_only and not args.out:
        raise ValueError("--collect-only needs --out (the agent's folder whose seeds it collects)")
    if not args.out:  # the agent's folder (the seeds' folders and agent.json go in it)
        what = "-".join(args.algos) if args.algos else args.algo
        args = replace(args, out=str(Path("runs") / f"InfAdapter-v0__{what}__seeds__{int(time.time())}"))
    # absolute paths: trainings on Ray workers (or a cluster, --address) write and read them too
    args = replace(args, out=str(Path(args.out).expanduser().resolve()))
    if args.budget_trace and Path(args.budget_trace).expanduser().exists():
        args = replace(args, budget_trace=str(Path(args.budget_trace).expanduser().resolve()))
    seeds = args.seeds or [args.seed]
    groups = sweep_groups(args)
    tasks = []
    for folder, (algo, beta) in groups.items():
        for seed in seeds:
            one = replace(args, algo=algo, beta=beta, seed=seed, out=str(folder / f"seed{seed}"))
            one = replace(one, seeds=[], algos=[], sweep_betas=[], backend="serial")
            tasks.append(TrainTask(one, seed_command(one, seed, folder / f"seed{seed}"), command))
    if not args.collect_only:
        for k, folder in enumerate(execute(tasks, args.backend, args.workers, args.address or None), start=1):
            print(f"[{k}/{len(tasks)}] trained {folder}", flush=True)
    agents = {str(folder): collect(folder, [f"seed{seed}" for seed in seeds], command) for folder in groups}
    return agents if len(agents) > 1 else next(iter(agents.values()))


def execute(tasks: list[TrainTask], backend: str, workers: int, address: str | None) -> Any:
    """Run the trainings on the backend; yields each one's folder as it finishes (results do not
    depend on the backend: each training seeds itself and runs torch on one thread)."""
    if backend == "serial":
        yield from (run_task(task) for task in tasks)
    elif backend == "local":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")  # torch does not survive fork well
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(run_task, task) for task in tasks]
            yield from (future.result() for future in as_completed(futures))
    else:
        from infadapter_env.parallel import ray_results, ray_session

        with ray_session(workers, address) as ray:
            remote = ray.remote(num_cpus=1)(run_task)
            yield from ray_results(ray, [remote.remote(task) for task in tasks])


def collect(out: Path, seeds: list[str], command: str) -> dict[str, Any]:
    """Write ``out/agent.json`` (the seeds, their training-day scores, the one played: the best
    there) and ``out/learning_curve.png`` (mean and min-max over the seeds)."""
    metas = {name: json.loads((out / name / "meta.json").read_text()) for name in seeds}
    scores = {name: meta.get("evaluation", {}).get("mean_objective") for name, meta in metas.items()}
    missing = sorted(name for name, score in scores.items() if score is None)
    if missing and len(seeds) > 1:
        raise ValueError(
            f"every seed needs its training-day evaluation to choose from (trained with --no-evaluate?); "
            f"missing in {missing}"
        )
    plays = max(seeds, key=lambda name: scores[name] or 0.0)
    selection = "the best mean objective on the training-day windows of its evaluation (never test results)"
    agent = {
        "seeds": seeds,
        "plays": plays,
        "selection": selection if not missing else "the only seed (not evaluated: --no-evaluate)",
        "train_scores": scores,
        "commands": {name: meta["command"] for name, meta in metas.items()},
        "run_by": command,
        "train_wall_s": {name: meta["train_wall_s"] for name, meta in metas.items()},
        "train_cpu_s": {name: meta.get("train_cpu_s") for name, meta in metas.items()},
    }
    (out / AGENT_FILE).write_text(json.dumps(agent, indent=2) + "\n")
    title = f"{out.name}: {len(seeds)} seeds ({next(iter(metas.values()))['args']['total_timesteps']:,} steps each)"
    learning_curve([out / name / "progress.csv" for name in seeds], out / "learning_curve.png", title)
    print(f"{out / AGENT_FILE}: plays {plays} (training-day scores {scores})")
    return agent
