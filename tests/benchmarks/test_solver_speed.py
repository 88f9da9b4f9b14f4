"""Decision time of the exact fast solver next to the paper's PuLP integer program (CBC), same instances.

Run with ``make bench``. Targets (medians, PuLP + CBC timed on the same instances in the same run):
on the shipped world (5 variants, 20 cores: exhaustive search) the fast solver at least 50x faster;
on a synthetic world of 10 variants and a 64-core budget (branch and bound, ``tests/agents/solver_worlds.py``)
at least 15x faster, which is the issue's 10 ms per decision against CBC's ~150 ms there on the
2-core machine. The milliseconds are recorded (extra_info, the printed line), not asserted: an
absolute time on a shared machine is no test.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from infadapter_agents.planning import solver
from infadapter_agents.planning.solver import PlanningModel, solve
from infadapter_env.core.objective import Weights
from infadapter_env.world.profiles import load_profile
from tests.agents.solver_worlds import benchmark_decisions, random_decision, random_world, synthetic_world
from tests.benchmarks.targets import at_least, check

TARGET_SPEEDUP = 50.0
TARGET_10X64_SPEEDUP = 15.0
TARGET_10X64_MS = 10.0  # recorded, not asserted


def instances(n: int = 40) -> list[tuple[float, tuple[int, ...], Weights]]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        rate = float(rng.uniform(5, 380))  # the paper trace's range of rates
        previous = tuple(int(c) if c >= 2 else 0 for c in rng.integers(0, 9, 5))
        out.append((rate, previous, Weights(1.0, float(rng.choice([0.01, 0.02, 0.05, 0.1, 0.2])), 0.001)))
    return out


def decision_s(model: PlanningModel, solver_name: str, cases: list) -> list[float]:
    times = []
    for rate, previous, weights in cases:
        started = time.perf_counter()
        solve(model, rate, previous, weights, solver_name)
        times.append(time.perf_counter() - started)
    return times


def median_decision_s(model: PlanningModel, solver_name: str, cases: list) -> float:
    return statistics.median(decision_s(model, solver_name, cases))


def test_fast_solver_against_pulp_cbc(benchmark, monkeypatch):
    model = PlanningModel(load_profile(750, "linear_fit"), 20)
    assert model.table.total_capacity.size == 20_529  # built once per planning model, outside the timing
    cases = instances()
    ilp_s = median_decision_s(model, "ilp", cases)
    fast_s = statistics.median(median_decision_s(model, "fast", cases) for _ in range(5))
    with monkeypatch.context() as patch:  # what branch and bound would take on this world
        patch.setattr(solver, "ENUMERATION_LIMIT", 0)
        model.prepare()
        bnb_s = statistics.median(median_decision_s(model, "fast", cases) for _ in range(5))
    ratio = ilp_s / fast_s
    benchmark.extra_info.update(
        {
            "ilp_cbc_median_ms": 1e3 * ilp_s,
            "fast_median_ms": 1e3 * fast_s,
            "speedup": ratio,
            "branch_and_bound_median_ms": 1e3 * bnb_s,
        }
    )
    benchmark(lambda: [solve(model, *case, "fast") for case in cases])
    print(
        f"\n5 x 20 median decision: PuLP+CBC {1e3 * ilp_s:.2f} ms, fast {1e3 * fast_s:.3f} ms, "
        f"speedup {ratio:.0f}x (branch and bound on this world: {1e3 * bnb_s:.2f} ms)"
    )
    check(benchmark, at_least("PuLP+CBC / fast solver (5 x 20)", ratio, TARGET_SPEEDUP))


def test_fast_solver_at_10_variants_and_64_cores_against_pulp_cbc(benchmark):
    model = synthetic_world()
    model.prepare()  # search tables, once per planning model, outside the timing
    assert not model.enumerable  # about 1.9e11 deployments: branch and bound
    cases = benchmark_decisions(model)
    ilp_s = median_decision_s(model, "ilp", cases)
    runs = np.array([decision_s(model, "fast", cases) for _ in range(5)])  # (run, case)
    fast_s = float(np.median(np.median(runs, axis=1)))
    per_case = runs.min(axis=0)  # each case's best of 5: its cost without the machine's noise
    p90_s, worst_s = float(np.quantile(per_case, 0.9)), float(per_case.max())
    ratio = ilp_s / fast_s
    benchmark.extra_info.update(
        {
            "ilp_cbc_median_ms": 1e3 * ilp_s,
            "fast_median_ms": 1e3 * fast_s,
            "fast_p90_ms": 1e3 * p90_s,
            "fast_max_ms": 1e3 * worst_s,
            "speedup": ratio,
            "target_ms": TARGET_10X64_MS,
            "median_within_target": fast_s * 1e3 <= TARGET_10X64_MS,
        }
    )
    benchmark(lambda: [solve(model, *case, "fast") for case in cases])
    print(
        f"\n10 x 64 median decision: PuLP+CBC {1e3 * ilp_s:.1f} ms, fast {1e3 * fast_s:.2f} ms "
        f"(p90 {1e3 * p90_s:.2f} ms, max {1e3 * worst_s:.2f} ms; issue's figure {TARGET_10X64_MS:.0f} ms), "
        f"speedup {ratio:.0f}x"
    )
    check(benchmark, at_least("PuLP+CBC / fast solver (10 x 64)", ratio, TARGET_10X64_SPEEDUP))


def test_fast_solver_worst_case_on_random_worlds(benchmark):
    """The issue's 10 ms is a worst case, and the benchmark world is a kind one: 300 random worlds
    of 10 variants and 64 cores (``tests/agents/solver_worlds.py``: non-monotone capacities, random
    weights including beta 0 and gamma 0.5, rates up to 1.1x the budget's reach), each decision's
    best of 3. Asserted as a ratio against PuLP + CBC on the first 20 of the same decisions
    (median), measured in this run: CBC's median over the fast solver's p99 at least 15x, which is
    the 10 ms against CBC's ~150 ms on the 2-core machine. The worst case is recorded."""
    rng = np.random.default_rng(2024)
    cases = []
    for _ in range(300):
        model = random_world(rng)
        cases.append((model, *random_decision(rng, model)))
    fast = []
    for model, rate, previous, weights in cases:
        model.prepare()  # the world's tables (a cache of 16 worlds), outside the timing
        best = np.inf
        for _ in range(3):
            started = time.perf_counter()
            solve(model, rate, previous, weights, "fast")
            best = min(best, time.perf_counter() - started)
        fast.append(best)
    ilp_s = statistics.median(decision_s(m, "ilp", [(r, p, w)])[0] for m, r, p, w in cases[:20])
    median_s, p99_s, worst_s = (float(np.quantile(fast, q)) for q in (0.5, 0.99, 1.0))
    ratio = ilp_s / p99_s
    benchmark.extra_info.update(
        {
            "ilp_cbc_median_ms": 1e3 * ilp_s,
            "fast_median_ms": 1e3 * median_s,
            "fast_p99_ms": 1e3 * p99_s,
            "fast_max_ms": 1e3 * worst_s,
            "cbc_median_over_fast_p99": ratio,
            "target_ms": TARGET_10X64_MS,
        }
    )
    model, *case = cases[0]
    benchmark(lambda: solve(model, *case, "fast"))
    print(
        f"\n300 random 10 x 64 worlds: fast median {1e3 * median_s:.2f} ms, p99 {1e3 * p99_s:.2f} ms, "
        f"max {1e3 * worst_s:.2f} ms (issue's figure {TARGET_10X64_MS:.0f} ms); PuLP+CBC median "
        f"{1e3 * ilp_s:.1f} ms ({ratio:.0f}x the fast p99)"
    )
    check(benchmark, at_least("PuLP+CBC median / fast solver p99 (random worlds)", ratio, TARGET_10X64_SPEEDUP))
