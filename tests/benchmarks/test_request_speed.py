"""Speed of the request-level simulator: one paper-slice episode (about 122,000 requests), the
compiled simulator (``infadapter_env.sim.request``) against its pure-Python oracle
(``tests/sim/request_oracle.py``, the same rules one request at a time) in the same run.

Run with ``make bench``. Targets: a compiled episode (reset and 42 steps) in at most 0.05 s on one
core, and the interval simulation (``simulate_requests``: the per-request loop and the interval's
statistics) at ``RATIO_TARGET`` times the oracle's throughput or more. The whole episode's ratio is
recorded too: it is lower, as both spend the same time drawing the episode's arrival times
(``world.arrivals.request_times``) and the fast model's bookkeeping of the step. The fast
simulator's episode is timed in the same run for comparison.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

import infadapter_env  # noqa: F401
import infadapter_env.core.scalar_env as scalar_env
from infadapter_env.sim import request as compiled
from tests.benchmarks.targets import at_least, at_most, check
from tests.sim import request_oracle as oracle

TARGET_S = 0.05
RATIO_TARGET = 20.0
ACTION = np.array([0, 0, 8, 0, 12])


class Timing(NamedTuple):
    episode_s: float  # reset and every step
    interval_s: float  # inside simulate_requests
    requests: float


@contextmanager
def simulating_with(module: Any, spent: list[float]):
    """The env's request-level simulator taken from ``module``; time inside it added to ``spent``."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        out = module.simulate_requests(*args, **kwargs)
        spent[0] += time.perf_counter() - started
        return out

    saved = scalar_env.RequestSimulator, scalar_env.simulate_requests
    scalar_env.RequestSimulator, scalar_env.simulate_requests = module.RequestSimulator, timed
    try:
        yield
    finally:
        scalar_env.RequestSimulator, scalar_env.simulate_requests = saved


def episode(module: Any = compiled) -> Timing:
    spent = [0.0]
    with simulating_with(module, spent):
        env = gym.make("InfAdapter-v0", simulator="request")
        started = time.perf_counter()
        env.reset(seed=0)
        requests = 0.0
        for _ in range(env.unwrapped.n_steps):
            requests += env.step(ACTION)[4]["arrivals"]
        return Timing(time.perf_counter() - started, spent[0], requests)


def fast_episode_s() -> float:
    env = gym.make("InfAdapter-v0", simulator="fast")
    started = time.perf_counter()
    env.reset(seed=0)
    for _ in range(env.unwrapped.n_steps):
        env.step(ACTION)
    return time.perf_counter() - started


def best(timings: list[Timing]) -> Timing:
    return Timing(min(t.episode_s for t in timings), min(t.interval_s for t in timings), timings[0].requests)


def test_request_level_episode_time(benchmark):
    episode(compiled)  # compiled code loaded, caches warm
    reference = best([episode(oracle) for _ in range(2)])
    mine = best([episode(compiled) for _ in range(5)])
    fast_s = min(fast_episode_s() for _ in range(3))
    assert mine.requests == reference.requests
    interval_ratio = reference.interval_s / mine.interval_s
    benchmark.extra_info.update(
        {
            "requests": mine.requests,
            "episode_s": mine.episode_s,
            "oracle_episode_s": reference.episode_s,
            "episode_ratio": reference.episode_s / mine.episode_s,
            "interval_simulation_s": mine.interval_s,
            "oracle_interval_simulation_s": reference.interval_s,
            "interval_simulation_ratio": interval_ratio,
            "requests_per_s": mine.requests / mine.interval_s,
            "fast_episode_s": fast_s,
        }
    )
    benchmark.pedantic(episode, rounds=5)
    print(
        f"\npaper slice ({mine.requests:,.0f} requests): episode {mine.episode_s * 1e3:.1f} ms "
        f"(oracle {reference.episode_s * 1e3:.0f} ms, x{reference.episode_s / mine.episode_s:.1f}); "
        f"interval simulation {mine.interval_s * 1e3:.1f} ms (oracle {reference.interval_s * 1e3:.0f} ms, "
        f"x{interval_ratio:.1f}, {mine.requests / mine.interval_s / 1e6:.1f} M requests/s); fast {fast_s * 1e3:.1f} ms"
    )
    check(
        benchmark,
        at_most("paper-slice episode (s)", mine.episode_s, TARGET_S),
        at_least("interval simulation / oracle's throughput", interval_ratio, RATIO_TARGET),
    )
