"""The compiled request-level simulator (``sim.request`` on ``sim.request_kernels``) against its
pure-Python oracle (``tests/sim/request_oracle.py``): on fixed seeds both must give equal
per-request outcomes (variant, latency, dropped), interval results, cluster states and infos, to
the last bit. Episodes are played through the environment with one or the other patched in."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infadapter_env.core.scalar_env as scalar_env
from infadapter_env.sim import request as compiled
from infadapter_env.sim import request_kernels as kernels
from tests.sim import request_oracle as oracle

SEEDS = range(5)
SERVING, OVERLOADED, FEW = [12, 0, 0, 0, 8], [0, 0, 8, 0, 12], [2, 0, 0, 0, 0]  # paper slice, cores mode
DISPATCHERS = ("accuracy_first", "proportional", "quota")


@contextmanager
def simulator(module: Any, log: list[dict[str, Any]]):
    """The env's request-level simulator taken from ``module`` while inside; each interval's
    requests, result and state are appended to ``log``."""

    class Recording(module.RequestSimulator):
        def run_interval(self, *args: Any, **kwargs: Any) -> Any:
            records = super().run_interval(*args, **kwargs)
            log.append({"arrival": records.arrival_s.copy(), "variant": records.variant.copy()})
            log[-1]["latency"] = records.latency_s.copy()
            return records

    def simulate(engine: Any, *args: Any, **kwargs: Any) -> Any:
        state, result = module.simulate_requests(engine, *args, **kwargs)
        log[-1].update(by_env=result.by_env.copy(), by_variant=result.by_variant.copy())
        log[-1].update(state=[np.array(x, copy=True) for x in state], windows=engine.window_p99_ms.copy())
        return state, result

    saved = scalar_env.RequestSimulator, scalar_env.simulate_requests
    scalar_env.RequestSimulator, scalar_env.simulate_requests = Recording, simulate
    try:
        yield
    finally:
        scalar_env.RequestSimulator, scalar_env.simulate_requests = saved


def play(module: Any, seed: int, actions: list[Any], quotas: list[Any] | None = None, **env_settings: Any) -> list:
    """Every interval's log entry and info of one episode's first ``len(actions)`` steps."""
    log: list[dict[str, Any]] = []
    with simulator(module, log):
        env = gym.make("InfAdapter-v0", simulator="request", **env_settings)
        env.reset(seed=seed)
        for step, action in enumerate(actions):
            if quotas is not None:
                env.unwrapped.set_quotas(quotas[step])
            info = env.step(action)[4]
            log[-1]["info"] = info
    return log


def assert_same(expected: Any, actual: Any, where: str = "") -> None:
    """Equal to the last bit (NaN equal to NaN), through dicts and lists."""
    if isinstance(expected, dict):
        assert expected.keys() == actual.keys(), where
        for key in expected:
            assert_same(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list | tuple) and not isinstance(expected, str):
        assert len(expected) == len(actual), where
        for k, (a, b) in enumerate(zip(expected, actual, strict=True)):
            assert_same(a, b, f"{where}[{k}]")
    elif isinstance(expected, np.ndarray) or isinstance(actual, np.ndarray):
        a, b = np.asarray(expected), np.asarray(actual)
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f"{where}: {a} != {b}"
    elif isinstance(expected, float) and math.isnan(expected):
        assert isinstance(actual, float) and math.isnan(actual), where
    else:
        assert expected == actual, f"{where}: {expected!r} != {actual!r}"


def both(seed: int, actions: list[Any], quotas: list[Any] | None = None, **env_settings: Any) -> list:
    """Play the episode with the oracle and the compiled simulator; assert they agree; the log."""
    expected = play(oracle, seed, actions, quotas, **env_settings)
    actual = play(compiled, seed, actions, quotas, **env_settings)
    assert len(expected) == len(actions)
    assert_same(expected, actual, f"seed {seed}")
    check_conservation(actual)
    return actual


def check_conservation(log: list[dict[str, Any]]) -> None:
    """Each interval's arrivals are served in or over the SLO, or dropped (waiting requests lost at
    a change are dropped in their interval; ``lost`` also counts those of earlier intervals,
    already reported as served, which ``rescheduled_late`` counts)."""
    for entry in log:
        arrivals, _, over_slo, dropped, lost = entry["by_env"][:5, 0]
        in_slo, served = entry["by_variant"][0, 0], entry["by_variant"][1, 0]
        assert arrivals == entry["arrival"].size == in_slo.sum() + over_slo + dropped
        assert served.sum() == (entry["variant"] >= 0).sum() and dropped == np.isnan(entry["latency"]).sum()
        assert np.isnan(entry["latency"]).sum() == (entry["variant"] < 0).sum()
        assert lost >= 0
    lost, dropped = sum(e["by_env"][4, 0] for e in log), sum(e["by_env"][3, 0] for e in log)
    assert lost <= dropped + log[-1]["info"]["rescheduled_late"]


def totals(log: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "dropped": sum(e["by_env"][3, 0] for e in log),
        "lost": sum(e["by_env"][4, 0] for e in log),
        "rescheduled_late": log[-1]["info"]["rescheduled_late"],
    }


# ----------------------------------------------------------------------------- fixed deployments
@pytest.mark.parametrize("dispatcher", DISPATCHERS)
@pytest.mark.parametrize("action", [SERVING, OVERLOADED, FEW], ids=["serving", "overloaded", "few"])
def test_fixed_deployments_on_the_paper_slice(dispatcher, action):
    dropped = [totals(both(seed, [np.array(action)] * 8, dispatcher=dispatcher))["dropped"] for seed in SEEDS]
    if action is not SERVING:
        assert min(dropped) > 0  # overloaded: queues fill and turn requests away


def test_a_whole_paper_slice_episode():
    log = both(0, [np.array(OVERLOADED)] * 42)
    assert sum(e["arrival"].size for e in log) == 121_697


# ----------------------------------------------------------------------------- changes mid-episode
def random_actions(rng: np.random.Generator, steps: int, replicas_mode: bool) -> list[np.ndarray]:
    """Deployments of one to three variants, mostly within the 20-core budget (one over it is
    kept as it was); some held for a step so that queues build up, some followed by the same
    without one of their variants, which stops at once and loses its waiting requests."""
    actions: list[np.ndarray] = []
    while len(actions) < steps:
        replicas, cores = np.zeros(5, dtype=np.int64), np.zeros(5, dtype=np.int64)
        for v in rng.choice(5, size=rng.integers(1, 4), replace=False):
            replicas[v] = rng.integers(1, 4) if replicas_mode else 1
            cores[v] = rng.integers(1, 9)
        if (replicas * cores).sum() > 20 and rng.random() < 0.7:
            cores = np.maximum(cores // 2, 1)
        actions.append(np.concatenate([replicas, cores]) if replicas_mode else cores)
        if rng.random() < 0.3:
            actions.append(actions[-1])
        active = np.flatnonzero(cores)
        if active.size > 1 and rng.random() < 0.5:
            stopped = actions[-1].copy()
            stopped[rng.choice(active) + (5 if replicas_mode else 0)] = 0
            actions.append(stopped)
    return actions[:steps]


@pytest.mark.parametrize("dispatcher", DISPATCHERS)
@pytest.mark.parametrize("mode", ["cores", "replicas"])
def test_deployment_changes_move_and_lose_waiting_requests(dispatcher, mode):
    seen = {"lost": 0.0, "rescheduled_late": 0.0}
    for seed in SEEDS:
        actions = random_actions(np.random.default_rng(100 + seed), 10, mode == "replicas")
        log = both(seed, actions, dispatcher=dispatcher, action_mode=mode, rate_multiplier=2.5)
        for key in seen:
            seen[key] += totals(log)[key]
    assert seen["lost"] > 0 and seen["rescheduled_late"] > 0  # the changes did move requests


def test_planned_quotas_route_from_the_second_the_loads_are_done():
    rng = np.random.default_rng(7)
    for seed in SEEDS:
        actions = random_actions(rng, 10, replicas_mode=False)
        quotas = [None if rng.random() < 0.2 else rng.integers(0, 40, 5).astype(float) for _ in actions]
        both(seed, actions, quotas, dispatcher="quota")


@pytest.mark.parametrize("arrivals", ["uniform", "loadgen"])
def test_other_arrival_processes(arrivals):
    for seed in SEEDS:
        actions = random_actions(np.random.default_rng(200 + seed), 8, replicas_mode=True)
        both(seed, actions, dispatcher=DISPATCHERS[seed % 3], arrivals=arrivals, action_mode="replicas")


def test_unbounded_queues_grow_their_ring_buffers():
    """queue_factor 10^6: once the first load is done nothing is turned away, and the waiting
    requests outgrow the rings' first depth."""
    for seed in SEEDS[:3]:
        log = both(seed, [np.array([0, 0, 0, 0, 2])] * 4, queue_factor=1e6)
        assert all(entry["by_env"][3, 0] == 0 for entry in log[1:])
        assert log[-1]["state"][5].max() > compiled.FIRST_QUEUE_DEPTH


@pytest.mark.parametrize("routing", ["random", "round_robin"])
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 4), st.integers(1, 3), st.integers(1, 8)), min_size=2, max_size=5
    ),
    st.integers(0, 2**16),
)
def test_random_schedules_of_changes(routing, schedule, seed):
    """Driven below the env: any (change second, variant, replicas, cores) in 3 s intervals, under
    either replica routing."""
    env = gym.make("InfAdapter-v0", simulator="request").unwrapped
    outcomes = []
    for module in (oracle, compiled):
        rng = np.random.default_rng(seed)
        engine = module.RequestSimulator(
            env.profile, env.settings.world.service_model, "accuracy_first", 1.25, "poisson", rng, routing
        )
        engine.start_episode(np.full(3 * len(schedule) + 3, 90.0), [(0, 0), (0, 0), (1, 4), (0, 0), (1, 2)])
        target = list(engine.serving)
        for step, (tick, v, replicas, cores) in enumerate(schedule):
            target[v] = (replicas, cores) if tick else (0, 0)  # tick 0: the variant stops at once
            ready = [tick if u == v else 4 for u in range(5)]
            records = engine.run_interval(3 * step, 3, list(target), ready)
            outcomes.append((records.variant, records.latency_s, waiting(engine, 3.0 * step + 3)))
        outcomes.append((engine.rescheduled_late, engine.take_lost()))
    half = len(outcomes) // 2
    assert_same(outcomes[:half], outcomes[half:])


def waiting(engine: Any, now: float) -> list[float]:
    if isinstance(engine, oracle.RequestSimulator):
        return [float(engine.waiting(v, now)) for v in range(engine.n_variants)]
    return engine.waiting(now).tolist()


# ----------------------------------------------------------------------------- the kernels' arithmetic
def test_percentiles_are_numpys_to_the_last_bit():
    rng = np.random.default_rng(0)
    for n in [*range(1, 12), 100, 1001, 5000]:
        for values in (rng.gamma(2.0, 0.1, n), rng.integers(0, 4, n).astype(float), np.full(n, 0.3)):
            expected = np.percentile(values, [50, 99])
            assert kernels.p50_p99(values.copy()) == (expected[0], expected[1])
    assert kernels.p50_p99(np.zeros(0)) == (0.0, 0.0)


def test_shares_are_summed_as_python_sums_floats():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        values = rng.choice([0.1, 1 / 3, 1e16, 30.7, 2.5e-3], size=rng.integers(1, 7)) * rng.random()
        assert kernels.python_sum.py_func(values, values.size) == sum(values.tolist())
        assert kernels.python_sum(values, values.size) == sum(values.tolist())
