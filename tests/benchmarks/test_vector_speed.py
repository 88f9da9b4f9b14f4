"""Throughput of the batched vector env at N = 1024, on one thread and on every core, next to the
scalar env and to Gymnasium's own ``CartPoleVectorEnv`` at N = 1024, same run.

Run with ``make bench``. Targets, for a policy that provisions enough ("steady") and for an
under-provisioned one ("overloaded"): on every core, at least 50x the scalar env's env-steps per
second, and ``CartPoleVectorEnv`` at most ``CARTPOLE_TARGET`` times faster than ours.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

import infadapter_env  # noqa: F401
from infadapter_env.parallel import usable_cpus
from tests.benchmarks.targets import at_least, at_most, check

TARGET_SPEEDUP = 50.0
CARTPOLE_TARGET = {"steady": 15.0, "overloaded": 20.0}  # CartPoleVectorEnv's env-steps/s over ours, at most
THREADS = len(usable_cpus())
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


def batched_steps_per_s(action: np.ndarray, steps: int = 84, threads: int = THREADS) -> float:
    envs = gym.make_vec("InfAdapter-v0", num_envs=N_ENVS, vectorization_mode="vector_entry_point", threads=threads)
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
    one_thread = max(batched_steps_per_s(action, threads=1) for _ in range(3))
    batched = max(batched_steps_per_s(action) for _ in range(3))
    cartpole = max(cartpole_vector_steps_per_s() for _ in range(3))
    ratio, behind = batched / scalar, cartpole / batched
    benchmark.extra_info.update(
        {
            "case": case,
            "threads": THREADS,
            "scalar_steps_per_s": scalar,
            "batched_one_thread_steps_per_s": one_thread,
            "batched_steps_per_s": batched,
            "speedup": ratio,
            "cartpole_vector_steps_per_s": cartpole,
            "cartpole_over_batched": behind,
        }
    )
    benchmark.pedantic(batched_steps_per_s, args=(action, 42), rounds=3)
    print(
        f"\n{case}: scalar {scalar:,.0f} env-steps/s; batched (N={N_ENVS}) {one_thread:,.0f} on 1 thread, "
        f"{batched:,.0f} on {THREADS}: {ratio:.1f}x the scalar env; CartPoleVectorEnv (N={N_ENVS}) "
        f"{cartpole:,.0f} env-steps/s: {behind:.1f}x faster than ours (target at most {CARTPOLE_TARGET[case]:.0f}x)"
    )
    check(
        benchmark,
        at_least(f"batched / scalar env-steps ({case})", ratio, TARGET_SPEEDUP),
        at_most(f"CartPoleVectorEnv / batched env-steps ({case})", behind, CARTPOLE_TARGET[case]),
    )
