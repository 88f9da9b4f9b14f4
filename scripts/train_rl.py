"""Train a stable-baselines3 policy on InfAdapter-v0 with the batched env, then score it like the leaderboard.

    python -m infadapter_scripts.train_rl --algo ppo --seed 0            (or: infadapter train --algo ppo --seed 0)

``--algo``: ``ppo`` (MultiDiscrete cores action), ``maskable-ppo`` (sb3-contrib MaskablePPO on the
Discrete deployment action with masks), ``a2c`` (MultiDiscrete cores action). Training episodes
are windows of the training days (days 0-13) drawn by the seeded env; observations are normalised
(VecNormalize), and the statistics are saved with the policy. Writes the checkpoint to ``--out``
(default ``runs/<run name>`` in the current folder, never into the installed package; give
``--out agents/checkpoints/<algo>`` to replace a shipped one: ``model.zip`` (the whole SB3
algorithm: ``PPO.load("model.zip")`` then ``.learn(...)`` continues), ``vecnormalize.pkl``, ``meta.json`` with
the command, seed, versions, commit, wall time and the evaluation on the leaderboard scenarios,
and a copy of the training log ``progress.csv`` and ``learning_curve.png``); the SB3 log goes to
``--log-dir/<run name>``, run names following ``{env}__{algo}__{seed}__{time}``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from infadapter_agents.learned import LearnedAgent
from infadapter_agents.sb3_env import InfAdapterSB3VecEnv
from infadapter_env.config import EnvConfig
from infadapter_env.leaderboard.episode import play
from infadapter_env.leaderboard.protocol import env_kwargs, scenarios
from infadapter_env.provenance import git_commit, relative_to_repo, versions
from infadapter_scripts.arguments import arg, parse

ALGOS = {"ppo": "cores", "a2c": "cores", "maskable-ppo": "deployment"}


@dataclass
class Args:
    """Train an SB3 policy on InfAdapter-v0."""

    algo: str = arg("ppo", f"one of {', '.join(ALGOS)}")
    seed: int = arg(0, "seed of the env windows, the policy and torch")
    total_timesteps: int = arg(300_000, "environment steps to train for")
    num_envs: int = arg(16, "environments in the batched env")
    episode_length_s: int = arg(1260, "length of the training windows (the paper slice is 1,260 s)")
    beta: float = arg(0.05, "resource-cost weight of the training reward (alpha 1, gamma 0.001)")
    discount: float = arg(0.9, "discount factor (decisions 30 s apart; the objective is per interval)")
    learning_rate: float = arg(3e-4, "optimiser learning rate")
    n_steps: int = arg(64, "rollout length per environment between updates")
    hidden: int = arg(64, "units in each of the two hidden layers of policy and value networks")
    out: str = arg("", "checkpoint folder (default: runs/<run name>; agents/checkpoints/<algo> replaces a shipped one)")
    log_dir: str = arg("results/train", "where the training logs and learning curve go")
    evaluate: bool = arg(True, "score the policy on the leaderboard scenarios after training")


def make_model(args: Args, venv: Any) -> Any:
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


def train(args: Args, argv: list[str]) -> dict[str, Any]:
    if args.algo not in ALGOS:
        raise ValueError(f"unknown algorithm {args.algo!r}; valid: {', '.join(ALGOS)}")
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    torch.set_num_threads(1)
    set_random_seed(args.seed)
    run_name = f"InfAdapter-v0__{args.algo}__{args.seed}__{int(time.time())}"
    log_dir = Path(args.log_dir) / run_name
    out = Path(args.out) if args.out else Path("runs") / run_name
    settings: dict[str, Any] = {
        "scenario": "train",
        "episode_length_s": args.episode_length_s,
        "action_mode": ALGOS[args.algo],
        "beta": args.beta,
    }
    env = InfAdapterSB3VecEnv(args.num_envs, **settings)
    env.seed(args.seed)
    venv = VecNormalize(VecMonitor(env), norm_obs=True, norm_reward=False)
    model = make_model(args, venv)
    model.set_logger(configure(str(log_dir), ["csv"]))
    started = time.time()
    print(f"{run_name}: training {args.total_timesteps} steps on {args.num_envs} batched envs", flush=True)
    with tqdm(total=args.total_timesteps, desc=args.algo, unit="step", file=sys.stderr) as bar:
        model.learn(args.total_timesteps, callback=ProgressCallback(bar))
    wall_s = time.time() - started

    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save(str(staging / "model.zip"))  # the whole algorithm: ALGO.load(...) then .learn(...) continues
    venv.training = False
    venv.save(str(staging / "vecnormalize.pkl"))  # statistics only: VecNormalize drops its envs when pickled
    meta: dict[str, Any] = {
        "algo": args.algo,
        "action_mode": ALGOS[args.algo],
        "command": "infadapter train " + " ".join(argv),
        "args": asdict(args) | {"out": relative_to_repo(out), "log_dir": args.log_dir},
        "train_env": settings | {"num_envs": args.num_envs, "env": "InfAdapter-v0 (batched)"},
        "env_settings": EnvConfig.from_kwargs(**settings).recorded(),  # every setting, for LearnedAgent's check
        "train_wall_s": round(wall_s, 1),
        "versions": versions(),
        "git_commit": git_commit(),
        "run_name": run_name,
    }
    (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    curve = learning_curve(log_dir / "progress.csv", log_dir / "learning_curve.png", run_name)
    if curve is not None:  # the log and the curve ship with the policy
        shutil.copy(log_dir / "progress.csv", staging / "progress.csv")
        shutil.copy(curve, staging / "learning_curve.png")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)  # the checkpoint appears whole or not at all
    if args.evaluate:
        meta["evaluation"] = evaluate(out, args.beta)
        print(json.dumps(meta["evaluation"], indent=2))
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"checkpoint: {out} (trained in {wall_s:.0f} s); log: {log_dir}")
    return meta


def evaluate(checkpoint: Path, beta: float) -> dict[str, Any]:
    """Mean objective and SLO violations over the leaderboard scenarios, at the training beta."""
    per_scenario: dict[str, dict[str, float]] = {}
    agent = LearnedAgent(checkpoint)  # loaded once; play() resets it for every episode
    for name, scenario in scenarios().items():
        metrics = play(agent, env_kwargs(scenario, beta), seed=0)[0]
        per_scenario[name] = {k: round(metrics[k], 5) for k in ("objective", "slo_violation_pct", "mean_cores")}
    mean = round(statistics.fmean(r["objective"] for r in per_scenario.values()), 5)
    return {"scenarios": per_scenario, "mean_objective": mean, "beta": beta}


def learning_curve(progress: Path, png: Path, title: str) -> Path | None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not progress.is_file():
        return None
    with progress.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("rollout/ep_rew_mean")]
    if not rows:
        return None
    steps = np.array([float(r["time/total_timesteps"]) for r in rows])
    reward = np.array([float(r["rollout/ep_rew_mean"]) for r in rows])
    length = np.array([float(r["rollout/ep_len_mean"]) for r in rows])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, reward / length, label="mean reward per decision (episode mean)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("objective per interval")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(Args, argv, prog="infadapter train")
    try:
        train(args, argv)
    except ValueError as exc:
        print(f"infadapter train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
