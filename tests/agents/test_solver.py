"""The InfAdapter decision: the PuLP ILP, the exact fast solver and a brute force agree."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infadapter_agents.planning import solver, solver_kernels
from infadapter_agents.planning.solver import Decision, PlanningModel, evaluate, solve, solve_single_variant
from infadapter_env.core.actions import enumerate_deployments
from infadapter_env.core.objective import Weights
from infadapter_env.world.profiles import load_profile
from tests.agents.solver_worlds import random_decision, random_world, synthetic_world

MODEL = PlanningModel(load_profile(750, "linear_fit"), 20)


@pytest.fixture(params=["enumeration", "branch_and_bound"])
def fast_method(request, monkeypatch):
    """The fast solver's two algorithms on the shipped world: its own (enumeration), and branch and
    bound, which it runs on worlds of more than ``ENUMERATION_LIMIT`` deployments."""
    if request.param == "branch_and_bound":
        monkeypatch.setattr(solver, "ENUMERATION_LIMIT", 0)
    return request.param


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


@pytest.mark.slow
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


def test_branch_and_bound_matches_a_brute_force_on_a_small_budget(monkeypatch):
    monkeypatch.setattr(solver, "ENUMERATION_LIMIT", 0)
    small = PlanningModel(load_profile(750, "measured"), 8)
    rng = np.random.default_rng(8)
    for _ in range(60):
        rate, previous, weights = random_instance(rng, 8)
        expected = brute_force(small, rate, previous, weights)
        fast = solve(small, rate, previous, weights)
        assert fast.fallback if expected is None else fast.objective == pytest.approx(expected, abs=1e-9)


def test_low_rate_is_served_by_one_accurate_variant(fast_method):
    decision = solve(MODEL, 10, (0,) * 5, Weights())
    assert decision.cores == (0, 0, 0, 0, 4)  # ResNet152 alone (4 cores: 10.4 req/s believed)
    assert decision.aa == pytest.approx(0.78312)


def test_high_rate_needs_a_mix_with_resnet18(fast_method):
    decision = solve(MODEL, 300, (0,) * 5, Weights())
    assert decision.cores[0] > 0 and sum(1 for c in decision.cores if c) >= 2
    assert sum(decision.cores) == 20 and decision.capacity_rps >= 300


def test_unservable_rate_falls_back_to_resnet18_at_full_budget(fast_method):
    decision = solve(MODEL, 1000, (0, 0, 8, 0, 12), Weights())
    assert decision.fallback and decision.cores == (20, 0, 0, 0, 0)
    assert decision.aa == pytest.approx(0.69758 * MODEL.capacity(decision.cores)[0] / 1000)


def test_loading_cost_keeps_an_unchanged_deployment_when_it_is_cheap_enough(fast_method):
    # Same objective but for LC: with a large gamma the solver prefers not to resize.
    keep = solve(MODEL, 60, (0, 0, 8, 0, 0), Weights(1, 0.05, 0.5))
    assert keep.lc == 0


def test_deployments_are_counted_without_enumerating_them():
    for budget in (2, 4, 8, 20):
        model = PlanningModel(load_profile(750, "linear_fit"), budget)
        assert model.n_deployments == len(enumerate_deployments(5, 2, model.max_cores, budget))
        assert model.enumerable
    assert MODEL.n_deployments == 20_529
    assert MODEL.max_capacity_rps == pytest.approx(MODEL.table.total_capacity[-1], rel=1e-12)
    large = synthetic_world()
    assert large.n_deployments > 10**11 and not large.enumerable


# The sweep of the shipped world: rates 0..400 req/s x budgets x capacity models x
# previous deployments (the paper's start is ResNet152 on 20 cores) x betas, gamma 0.001.
SWEEP_PREVIOUS = ((0, 0, 0, 0, 0), (0, 0, 0, 0, 20), (0, 0, 8, 0, 12), (4, 0, 0, 6, 0))
SWEEP_BETAS = (0.0125, 0.025, 0.05, 0.1, 0.2)


def sweep(step: float):
    for capacity in ("measured", "linear_fit"):
        profile = load_profile(750, capacity)
        for budget in (4, 8, 20):
            model = PlanningModel(profile, budget)
            for previous in SWEEP_PREVIOUS:
                for beta in SWEEP_BETAS:
                    for rate in np.arange(0.0, 400.0 + 1e-9, step).tolist():
                        yield model, rate, previous, Weights(1.0, beta, 0.001)


# sha256 of repr(cores) of every decision of the sweep in order, from the enumeration solver as it
# was before branch and bound (commit ddd0425): published leaderboards depend on its choice between
# deployments of equal objective, so that choice must not move.
PINNED_SWEEP = {
    10.0: "babb9e9b9d8e143f70d7e87a53c357b5858417051fc0c465bb13f9a4b9d875fe",
    0.5: "feb05805af24ebe9e0cb7262f5111709b6b5c5166a47d2d296c3b90e7422f429",
}


def sweep_digest(step: float) -> str:
    digest = hashlib.sha256()
    for model, rate, previous, weights in sweep(step):
        digest.update(repr(solve(model, rate, previous, weights).cores).encode())
    return digest.hexdigest()


def test_fast_solver_decisions_on_the_shipped_world_are_unchanged():
    assert sweep_digest(10.0) == PINNED_SWEEP[10.0]


@pytest.mark.expensive
def test_fast_solver_decisions_on_the_shipped_world_are_unchanged_at_every_half_request():
    assert sweep_digest(0.5) == PINNED_SWEEP[0.5]


def branch_and_bound_against_enumeration(step: float, monkeypatch) -> tuple[int, int]:
    """(cases, identical decisions) of branch and bound next to the enumeration over the sweep; the
    objective must be the same."""
    cases = identical = 0
    for model, rate, previous, weights in sweep(step):
        table = solve(model, rate, previous, weights)
        with monkeypatch.context() as patch:
            patch.setattr(solver, "ENUMERATION_LIMIT", 0)
            bnb = solve(model, rate, previous, weights)
        assert bnb.fallback == table.fallback
        assert abs(bnb.objective - table.objective) <= 1e-9, (rate, previous, weights, table, bnb)
        cases += 1
        identical += bnb.cores == table.cores
    return cases, identical


def test_branch_and_bound_reaches_the_enumeration_optimum_on_the_shipped_world(monkeypatch):
    cases, identical = branch_and_bound_against_enumeration(20.0, monkeypatch)
    assert cases == 21 * 120 and identical == cases  # it even breaks the ties the same way here


@pytest.mark.expensive
def test_branch_and_bound_reaches_the_enumeration_optimum_on_the_whole_sweep(monkeypatch):
    cases, identical = branch_and_bound_against_enumeration(0.5, monkeypatch)
    assert cases == 801 * 120 and identical == cases


def assert_feasible(model: PlanningModel, decision: Decision) -> None:
    cores = decision.cores
    assert len(cores) == model.n_variants and sum(cores) <= model.budget_cores
    assert all(c == 0 or model.profile.min_cores <= c <= model.max_cores for c in cores)
    assert decision.fallback or sum(model.capacity(cores)) >= decision.rate_rps


def fast_against_ilp_on_random_worlds(seed: int, n: int) -> int:
    """Random 10-variant, 64-core worlds and decisions (``tests/agents/solver_worlds.py``): the fast solver
    (branch and bound there) and the PuLP ILP (CBC) reach the same objective; returns how many rates
    no deployment could serve."""
    rng = np.random.default_rng(seed)
    unservable = 0
    for _ in range(n):
        model = random_world(rng)
        rate, previous, weights = random_decision(rng, model)
        fast = solve(model, rate, previous, weights)
        ilp = solve(model, rate, previous, weights, "ilp")
        assert not model.enumerable and fast.fallback == ilp.fallback
        assert abs(fast.objective - ilp.objective) <= 1e-6, (rate, previous, weights, fast, ilp)
        assert_feasible(model, fast)
        unservable += fast.fallback
    return unservable


def test_fast_solver_matches_the_ilp_on_random_10x64_worlds():
    assert fast_against_ilp_on_random_worlds(seed=64, n=30) >= 1


@pytest.mark.expensive
def test_fast_solver_matches_the_ilp_on_200_random_10x64_worlds():
    assert 5 <= fast_against_ilp_on_random_worlds(seed=2024, n=200) <= 40


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
        [sys.executable, "-m", "infadapter_scripts.cli", *args], capture_output=True, text=True, check=False
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


def dominates(j: int, i: int, cores, capacity, slack, loading) -> bool:
    """The dominance of branch and bound's states (``solver_kernels.undominated``), written out."""
    return bool(
        cores[j] <= cores[i] and capacity[j] >= capacity[i] and slack[j] - slack[i] >= max(loading[j] - loading[i], 0.0)
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 6),  # cores
            st.sampled_from([0.0, 1.0, 2.5, 4.0, 7.0]),  # capacity: ties on purpose
            st.sampled_from([-1.0, 0.0, 0.3, 0.5, 1.0, 2.0]),  # slack
            st.sampled_from([0.0, 0.1, 0.5]),  # gamma x LC so far
        ),
        min_size=1,
        max_size=40,
    )
)
def test_the_dominance_filter_drops_only_states_a_kept_state_dominates(states):
    cores, capacity, slack, loading = (np.array(column) for column in zip(*states, strict=True))
    kept = solver_kernels.undominated(cores.astype(np.int64), capacity, slack, loading)
    assert len(set(kept.tolist())) == kept.size and set(kept.tolist()) <= set(range(len(states)))
    for i in set(range(len(states))) - set(kept.tolist()):
        assert any(dominates(j, i, cores, capacity, slack, loading) for j in kept if j != i), (i, states)


def test_the_dominance_filter_drops_the_plainly_dominated():
    # state 1 has more cores, less capacity and less slack than state 0 at the same loading;
    # state 2 is state 0 with a higher loading, which 0's lead in slack does not cover
    cores = np.array([2, 3, 2], dtype=np.int64)
    capacity = np.array([10.0, 9.0, 10.0])
    slack = np.array([1.0, 0.5, 0.95])
    kept = solver_kernels.undominated(cores, capacity, slack, np.array([0.2, 0.2, 0.0]))
    assert sorted(kept.tolist()) == [0, 2]
    kept = solver_kernels.undominated(cores, capacity, slack, np.array([0.0, 0.2, 0.2]))
    assert sorted(kept.tolist()) == [0]


def test_branch_and_bound_serves_a_rate_equal_to_the_most_the_budget_serves():
    # Capacities summed in two orders can differ by an ulp; the rate the budget can just reach must
    # not fall back (it did in 4 of these 30 worlds before a relative tolerance of 1e-12).
    rng = np.random.default_rng(3)
    for _ in range(30):
        model = random_world(rng)
        rate = model.max_capacity_rps
        fast = solve(model, rate, (0,) * model.n_variants, Weights())
        ilp = solve(model, rate, (0,) * model.n_variants, Weights(), "ilp")
        assert not fast.fallback and fast.objective == pytest.approx(ilp.objective, abs=1e-9)
