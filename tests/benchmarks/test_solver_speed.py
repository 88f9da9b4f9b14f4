"""Decision time of the exact fast solver next to the paper's PuLP integer program (CBC), same instances.

Run with ``make bench``. Target: the fast solver at least 50x faster than PuLP + CBC (median).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from infadapter_agents.solver import PlanningModel, solve
from infadapter_env.objective import Weights
from infadapter_env.profiles import load_profile

TARGET_SPEEDUP = 50.0


def instances(n: int = 40) -> list[tuple[float, tuple[int, ...], Weights]]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        rate = float(rng.uniform(5, 380))  # the paper trace's range of rates
        previous = tuple(int(c) if c >= 2 else 0 for c in rng.integers(0, 9, 5))
        out.append((rate, previous, Weights(1.0, float(rng.choice([0.01, 0.02, 0.05, 0.1, 0.2])), 0.001)))
    return out


def median_decision_s(model: PlanningModel, solver: str, cases: list) -> float:
    times = []
    for rate, previous, weights in cases:
        started = time.perf_counter()
        solve(model, rate, previous, weights, solver)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_fast_solver_against_pulp_cbc(benchmark):
    model = PlanningModel(load_profile(750, "linear_fit"), 20)
    assert model.table.total_capacity.size == 20_529  # built once per planning model, outside the timing
    cases = instances()
    ilp_s = median_decision_s(model, "ilp", cases)
    fast_s = statistics.median(median_decision_s(model, "fast", cases) for _ in range(5))
    ratio = ilp_s / fast_s
    benchmark.extra_info.update({"ilp_cbc_median_ms": 1e3 * ilp_s, "fast_median_ms": 1e3 * fast_s, "speedup": ratio})
    benchmark(lambda: [solve(model, *case, "fast") for case in cases])
    print(f"\nmedian decision: PuLP+CBC {1e3 * ilp_s:.2f} ms, fast {1e3 * fast_s:.3f} ms, speedup {ratio:.0f}x")
    assert ratio >= TARGET_SPEEDUP, f"fast solver only {ratio:.1f}x faster than PuLP+CBC (target {TARGET_SPEEDUP}x)"
