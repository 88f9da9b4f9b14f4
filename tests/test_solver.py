"""The InfAdapter decision: the PuLP ILP, the exact fast solver and a brute force agree."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from infadapter_agents.solver import PlanningModel, evaluate, solve, solve_single_variant
from infadapter_env.objective import Weights
from infadapter_env.profiles import load_profile

MODEL = PlanningModel(load_profile(750, "linear_fit"), 20)


def random_instance(rng: np.random.Generator, budget: int) -> tuple[float, tuple[int, ...], Weights]:
    max_rate = 1.3 * MODEL.profile.per_replica_rps[0, min(budget, 20)]  # a share of them infeasible
    rate = float(rng.uniform(0, max_rate)) if rng.random() > 0.05 else 0.0
    previous = tuple(int(c) if c >= 2 else 0 for c in rng.integers(0, budget // 2 + 1, 5))
    weights = Weights(
        float(rng.choice([1.0, 0.5, 2.0])),
        float(rng.choice([0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5])),
        float(rng.choice([0.0, 0.001, 0.01, 0.1, 0.5])),
    )
    return rate, previous, weights


def test_ilp_and_fast_solver_reach_the_same_objective_on_500_instances():
    rng = np.random.default_rng(2023)
    infeasible = 0
    for _ in range(500):
        rate, previous, weights = random_instance(rng, 20)
        fast = solve(MODEL, rate, previous, weights, "fast")
        ilp = solve(MODEL, rate, previous, weights, "ilp")
        assert fast.fallback == ilp.fallback
        assert abs(fast.objective - ilp.objective) <= 1e-9, (rate, previous, weights, fast, ilp)
        infeasible += fast.fallback
    assert 10 <= infeasible <= 200  # the instances include unservable rates


def brute_force(model: PlanningModel, rate: float, previous: tuple[int, ...], weights: Weights) -> float | None:
    sizes = [0, *range(model.profile.min_cores, model.max_cores + 1)]
    best = None
    rate = max(rate, 1e-3)
    for cores in itertools.product(sizes, repeat=5):
        if sum(cores) > model.budget_cores or sum(model.capacity(cores)) < rate:
            continue
        value = evaluate(model, cores, rate, previous, weights)[0]
        best = value if best is None else max(best, value)
    return best


@pytest.mark.parametrize("backend", ["cbc", "highs"])
def test_both_solvers_match_a_brute_force_on_a_small_budget(backend):
    small = PlanningModel(load_profile(750, "linear_fit"), 8)
    rng = np.random.default_rng(7)
    for _ in range(40):
        rate, previous, weights = random_instance(rng, 8)
        expected = brute_force(small, rate, previous, weights)
        fast = solve(small, rate, previous, weights, "fast")
        ilp = solve(small, rate, previous, weights, "ilp", backend)
        if expected is None:
            assert fast.fallback and ilp.fallback
        else:
            assert fast.objective == pytest.approx(expected, abs=1e-9)
            assert ilp.objective == pytest.approx(expected, abs=1e-9)


def test_low_rate_is_served_by_one_accurate_variant():
    decision = solve(MODEL, 10, (0,) * 5, Weights())
    assert decision.cores == (0, 0, 0, 0, 4)  # ResNet152 alone (4 cores: 10.4 req/s believed)
    assert decision.aa == pytest.approx(0.78312)


def test_high_rate_needs_a_mix_with_resnet18():
    decision = solve(MODEL, 300, (0,) * 5, Weights())
    assert decision.cores[0] > 0 and sum(1 for c in decision.cores if c) >= 2
    assert sum(decision.cores) == 20 and decision.capacity_rps >= 300


def test_unservable_rate_falls_back_to_resnet18_at_full_budget():
    decision = solve(MODEL, 1000, (0, 0, 8, 0, 12), Weights())
    assert decision.fallback and decision.cores == (20, 0, 0, 0, 0)
    assert decision.aa == pytest.approx(0.69758 * MODEL.capacity(decision.cores)[0] / 1000)


def test_loading_cost_keeps_an_unchanged_deployment_when_it_is_cheap_enough():
    # Same objective but for LC: with a large gamma the solver prefers not to resize.
    keep = solve(MODEL, 60, (0, 0, 8, 0, 0), Weights(1, 0.05, 0.5))
    assert keep.lc == 0


def test_model_switching_uses_one_variant_with_the_fewest_cores():
    decision = solve_single_variant(MODEL, 120, (0,) * 5, Weights())
    assert sum(1 for c in decision.cores if c) == 1
    v = next(i for i, c in enumerate(decision.cores) if c)
    assert MODEL.profile.th(v, decision.cores[v]) >= 120 > MODEL.profile.th(v, decision.cores[v] - 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"solver": "gurobi"}, "unknown solver 'gurobi'; valid solvers: fast, ilp"),
        ({"backend": "glpk"}, "unknown ILP backend 'glpk'"),
        ({"rate_rps": -1.0}, "rate must be >= 0"),
        ({"rate_rps": float("nan")}, "rate must be a finite number"),
        ({"previous": (0, 0, 25, 0, 0)}, "previous deployment must give 0..20 cores"),
    ],
)
def test_bad_solver_input_is_named(kwargs, message):
    call = {"rate_rps": 50.0, "previous": (0,) * 5, "weights": Weights()} | kwargs
    with pytest.raises(ValueError, match=message):
        solve(MODEL, **call)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infadapter_env.cli", *args], capture_output=True, text=True, check=False
    )


def test_solve_cli_prints_the_decision_as_json():
    done = run_cli("solve", "--rate", "120", "--previous", "152:20", "--beta", "0.05", "--solver", "ilp", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    fast = solve(MODEL, 120, (0, 0, 0, 0, 20), Weights(1, 0.05, 0.001))
    assert result["cores"] == list(fast.cores)
    assert result["objective"] == pytest.approx(fast.objective, abs=1e-9)
    assert set(result["terms"]) == {"AA", "RC", "LC"} and result["solve_time_s"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rate", "50", "--previous", "152-20"), "is not VARIANT:CORES"),
        (("--rate", "50", "--previous", "99:4"), "is not VARIANT:CORES"),
        (("--rate", "-5"), "rate must be >= 0"),
        (("--rate", "50", "--solver", "magic"), "unknown solver 'magic'"),
        (("--rate", "50", "--budget-cores", "0"), "budget_cores must be an integer >= min_cores (2"),
        (("--rate", "50", "--budget-cores", "-3"), "budget_cores must be an integer >= min_cores (2"),
        (("--rate", "50", "--budget-cores", "1"), "budget_cores must be an integer >= min_cores (2"),
    ],
)
def test_solve_cli_reports_bad_input(args, message):
    done = run_cli("solve", *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
