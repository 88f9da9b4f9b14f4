"""Throughput of the batched vector env at N = 1024 next to the scalar env and to Gymnasium's own
``CartPoleVectorEnv`` at N = 1024, same run.

Run with ``make bench``. Target: at least 50x the scalar env's env-steps per second, both for a
policy that provisions enough and for an under-provisioned one; the CartPole comparison is reported.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

import infadapter_env  # noqa: F401

TARGET_SPEEDUP = 50.0
N_ENVS = 1024
STEADY = np.array([12, 0, 0, 0, 8])  # serves the paper slice without queues
OVERLOADED = np.array([0, 0, 8, 0, 12])  # queues every interval


def scalar_steps_per_s(action: np.ndarray, steps: int = 840) -> float:
    env = gym.make("InfAdapter-v0")
    env.reset(seed=0)
    started = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - started)


def batched_steps_per_s(action: np.ndarray, steps: int = 84) -> float:
    envs = gym.make_vec("InfAdapter-v0", num_envs=N_ENVS, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    actions = np.tile(action, (N_ENVS, 1))
    started = time.perf_counter()
    for _ in range(steps):
        envs.step(actions)
    return steps * N_ENVS / (time.perf_counter() - started)


def cartpole_vector_steps_per_s(steps: int = 2000) -> float:
    envs = CartPoleVectorEnv(num_envs=N_ENVS)
    envs.reset(seed=0)
    actions = np.zeros(N_ENVS, dtype=np.int64)
    started = time.perf_counter()
    for _ in range(steps):
        envs.step(actions)
    return steps * N_ENVS / (time.perf_counter() - started)


@pytest.mark.parametrize(("case", "action"), [("steady", STEADY), ("overloaded", OVERLOADED)])
def test_batched_env_throughput(benchmark, case, action):
    scalar = max(scalar_steps_per_s(action) for _ in range(3))
    batched = max(batched_steps_per_s(action) for _ in range(3))
    cartpole = max(cartpole_vector_steps_per_s() for _ in range(3))
    ratio = batched / scalar
    benchmark.extra_info.update(
        {
            "case": case,
            "scalar_steps_per_s": scalar,
            "batched_steps_per_s": batched,
            "speedup": ratio,
            "cartpole_vector_steps_per_s": cartpole,
        }
    )
    benchmark.pedantic(batched_steps_per_s, args=(action, 42), rounds=3)
    print(
        f"\n{case}: scalar {scalar:,.0f} env-steps/s, batched (N={N_ENVS}) {batched:,.0f} env-steps/s: {ratio:.1f}x; "
        f"CartPoleVectorEnv (N={N_ENVS}) {cartpole:,.0f} env-steps/s: {cartpole / batched:.1f}x faster than ours"
    )
    assert ratio >= TARGET_SPEEDUP, f"batched env only {ratio:.1f}x the scalar env (target {TARGET_SPEEDUP}x)"
