"""Speed of the request-level simulator: one paper-slice episode (about 122,000 requests).

Run with ``make bench``. Target (issue "Latency you can trust"): at most 2 s on one core. The fast
simulator's episode is timed in the same run for comparison.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import infadapter_env  # noqa: F401

TARGET_S = 2.0
ACTION = np.array([0, 0, 8, 0, 12])


def episode_s(simulator: str) -> tuple[float, float]:
    env = gym.make("InfAdapter-v0", simulator=simulator)
    started = time.perf_counter()
    env.reset(seed=0)
    requests = 0.0
    for _ in range(env.unwrapped.n_steps):
        requests += env.step(ACTION)[4]["arrivals"]
    return time.perf_counter() - started, requests


def test_request_level_episode_time(benchmark):
    request_s, requests = min(episode_s("request") for _ in range(3))
    fast_s, _ = min(episode_s("fast") for _ in range(3))
    benchmark.extra_info.update({"request_episode_s": request_s, "fast_episode_s": fast_s, "requests": requests})
    benchmark.pedantic(episode_s, args=("request",), rounds=3)
    print(f"\npaper slice: request-level {request_s:.2f} s ({requests:,.0f} requests), fast {fast_s:.3f} s")
    assert request_s <= TARGET_S, f"a request-level paper-slice episode took {request_s:.2f} s (target {TARGET_S} s)"
