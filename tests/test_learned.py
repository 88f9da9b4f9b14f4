"""Learned policies: the SB3 adaptor, learnability, determinism, and the shipped checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

import infadapter_agents
from infadapter_agents.learned import CHECKPOINTS, LearnedAgent
from infadapter_agents.sb3_env import InfAdapterSB3VecEnv
from infadapter_env.deployment import enumerate_deployments
from infadapter_env.observation import observation_layout
from infadapter_env.traces import synthetic
from infadapter_scripts.train_rl import Args, make_model

layout = observation_layout()  # the shipped world's five variants


@pytest.mark.parametrize("mode", ["cores", "deployment"])
def test_sb3_checker_accepts_the_training_env(mode):
    check_env(gym.make("InfAdapter-v0", scenario="train", episode_length_s=1260, action_mode=mode), warn=True)


def test_vec_env_adaptor_restarts_episodes_the_sb3_way():
    env = InfAdapterSB3VecEnv(3, scenario="train", episode_length_s=600)
    env.seed(4)
    obs = env.reset()
    assert obs.shape == (3, layout.size)
    for step in range(20):
        obs, rewards, dones, infos = env.step(np.tile([0, 0, 8, 0, 8], (3, 1)))
        assert rewards.shape == (3,) and dones.all() == (step == 19)
    assert all(info["TimeLimit.truncated"] for info in infos)
    assert all(info["terminal_observation"][layout.PROGRESS] == 1.0 for info in infos)  # progress 1 at the end
    assert (obs[:, layout.PROGRESS] == 0).all()  # already the next episode's first observation
    masks = InfAdapterSB3VecEnv(2, action_mode="deployment").env_method("action_masks")
    assert len(masks) == 2 and masks[0].shape == (20_529,)


def best_constant_deployment(trace) -> float:
    """The best fixed deployment's mean reward, found by playing every one of them at once."""
    table = enumerate_deployments(5, 2, 20, 20)
    envs = gym.make_vec("InfAdapter-v0", num_envs=len(table), vectorization_mode="vector_entry_point", trace=trace)
    envs.reset(seed=0)
    total = np.zeros(len(table))
    for _ in range(trace.length_s // 30):
        total += envs.step(table)[1]
    return float(total.max() / (trace.length_s // 30))


def trained_policy_reward(trace, steps: int, seed: int = 0) -> float:
    torch.set_num_threads(1)
    venv = VecNormalize(VecMonitor(InfAdapterSB3VecEnv(16, trace=trace)), norm_obs=True, norm_reward=False)
    venv.seed(seed)
    model = make_model(Args(algo="ppo", seed=seed), venv)
    model.learn(steps)
    venv.training = False
    env = gym.make("InfAdapter-v0", trace=trace)
    obs, _ = env.reset(seed=0)
    rewards = []
    while True:
        action = model.predict(venv.normalize_obs(obs[None]), deterministic=True)[0][0]
        obs, reward, _, truncated, _ = env.step(action)
        rewards.append(reward)
        if truncated:
            return float(np.mean(rewards))


def test_ppo_learns_a_constant_load_to_95_percent_of_the_optimum():
    trace = synthetic("constant", 600, rate=60.0)
    optimum = best_constant_deployment(trace)
    assert trained_policy_reward(trace, 30_000) >= 0.95 * optimum


@pytest.mark.expensive
@pytest.mark.parametrize("rate", [30.0, 120.0, 200.0])
def test_ppo_learns_other_constant_loads(rate):
    trace = synthetic("constant", 600, rate=rate)
    assert trained_policy_reward(trace, 100_000) >= 0.95 * best_constant_deployment(trace)


def test_training_twice_with_one_seed_gives_the_same_policy():
    def train() -> list[np.ndarray]:
        venv = VecNormalize(VecMonitor(InfAdapterSB3VecEnv(4, scenario="train", episode_length_s=600)))
        venv.seed(3)
        model = make_model(Args(algo="ppo", seed=3, n_steps=64), venv)
        model.learn(1_024)
        return [p.detach().numpy().copy() for p in model.policy.parameters()]

    for a, b in zip(train(), train(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["ppo", "maskable-ppo", "a2c"])
def test_shipped_checkpoints_record_how_they_were_made_and_act(name):
    meta = json.loads((CHECKPOINTS / name / "meta.json").read_text())
    # Made before the scripts were installed as infadapter_scripts; new runs record `infadapter train`.
    made_by = (f"python -m scripts.train_rl --algo {name}", f"infadapter train --algo {name}")
    assert meta["command"].startswith(made_by) and "--seed" in meta["command"]
    assert meta["git_commit"] != "unknown" and meta["train_wall_s"] > 0 and "evaluation" in meta
    agent = infadapter_agents.make(name)
    env = gym.make("InfAdapter-v0", action_mode="replicas")
    obs, info = env.reset(seed=0)
    agent.reset(info)
    for _ in range(5):
        action = agent.act(obs, info)
        assert env.action_space.contains(np.asarray(action))
        obs, _, _, _, info = env.step(action)


def test_train_script_runs_end_to_end_with_a_tiny_budget(tmp_path):
    out = tmp_path / "ckpt"
    command = [
        sys.executable, "-m", "infadapter_scripts.train_rl", "--algo", "a2c", "--total-timesteps", "400",
        "--num-envs", "4", "--episode-length-s", "300", "--out", str(out), "--log-dir", str(tmp_path / "logs"),
        "--no-evaluate",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert {"model.zip", "vecnormalize.pkl", "meta.json"} <= {p.name for p in out.iterdir()}
    assert (next((tmp_path / "logs").iterdir()) / "progress.csv").is_file()
    assert "a2c: 100%" in done.stderr  # the progress bar
    agent = LearnedAgent(out)
    env = gym.make("InfAdapter-v0")
    obs, info = env.reset(seed=0)
    agent.reset(info)
    assert env.action_space.contains(np.asarray(agent.act(obs, info)))
    # A whole SB3 save: load it with its observation statistics and train on.
    from stable_baselines3 import A2C
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from infadapter_agents.sb3_env import InfAdapterSB3VecEnv

    train_env = InfAdapterSB3VecEnv(2, scenario="train", episode_length_s=300)  # the settings it was trained in
    normalised = VecNormalize.load(str(out / "vecnormalize.pkl"), VecMonitor(train_env))
    normalised.training = True
    model = A2C.load(str(out / "model.zip"), env=normalised, device="cpu")
    steps = model.num_timesteps
    model.learn(40, reset_num_timesteps=False)
    assert model.num_timesteps > steps


def test_unknown_algorithm_is_reported(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "infadapter_env.cli", "train", "--algo", "dqn", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "unknown algorithm 'dqn'; valid: ppo, a2c, maskable-ppo" in done.stderr
