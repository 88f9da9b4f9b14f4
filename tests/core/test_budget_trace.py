"""A core budget that varies over time (``budget_trace``): a co-located tenant takes cores for a
while, a node fails. The cores available bound each interval's deployment, show in the
observation, and mask the actions that do not fit them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import infadapter_env  # noqa: F401
from infadapter_env.core.actions import cut_to_budget
from infadapter_env.core.observation import observation_layout

# Every interval 20 cores, but for intervals 5-9, where a tenant holds 12 of them.
TENANT = [20] * 5 + [8] * 5 + [20]
WINDOW = {"episode_length_s": 600, "window_start_s": 0}


def test_the_available_cores_bound_the_deployment_kept_and_show_in_the_observation():
    env = gym.make("InfAdapter-v0", budget_trace=TENANT, **WINDOW)
    obs, _ = env.reset(seed=0)
    layout = env.unwrapped.layout
    assert layout.size == observation_layout().size + 1 and obs[layout.AVAILABLE_CORES] == 1.0
    seen = []
    for _ in range(12):
        obs, _, _, _, info = env.step(np.array([0, 0, 8, 0, 12]))
        seen.append(
            (info["available_cores"], info["cores_per_replica"], info["action_fix"], obs[layout.AVAILABLE_CORES])
        )
    # Interval 5 has 8 cores: the 20-core deployment in place is cut to fit (8 x 8/20 = 3.2 -> 3,
    # 12 x 8/20 = 4.8 -> 4), and the same 20-core request is then over budget and rejected.
    assert seen[4] == (20, [0, 0, 8, 0, 12], None, pytest.approx(8 / 20))  # the next interval's budget shows
    assert seen[5][:3] == (8, [0, 0, 3, 0, 4], "budget_cut")
    assert [s[2] for s in seen[6:10]] == ["over_budget_kept_previous"] * 4
    assert seen[10][:3] == (20, [0, 0, 8, 0, 12], None)  # the trace's last value holds after its end
    assert seen[11][0] == 20


def test_scale_fits_a_request_into_the_cores_available():
    env = gym.make("InfAdapter-v0", budget_trace=[10], over_budget="scale", **WINDOW)
    env.reset(seed=0)
    info = env.step(np.array([0, 0, 8, 0, 12]))[4]
    assert info["cores_per_replica"] == [0, 0, 4, 0, 6] and info["action_fix"] == "over_budget_scaled"


def test_a_cut_below_min_cores_everywhere_removes_the_least_accurate_replicas_first():
    replicas, cores = cut_to_budget(np.array([1, 0, 1, 0, 1]), np.array([4, 0, 4, 0, 4]), 4, 2)
    assert replicas.tolist() == [0, 0, 1, 0, 1] and cores.tolist() == [0, 0, 2, 0, 2]
    replicas, cores = cut_to_budget(np.array([1, 0, 0, 0, 1]), np.array([4, 0, 0, 0, 4]), 1, 2)
    assert replicas.tolist() == [0] * 5 and cores.tolist() == [0] * 5  # a node of one core runs nothing


def test_masks_exclude_what_does_not_fit_the_coming_interval():
    env = gym.make("InfAdapter-v0", budget_trace=[20, 6], action_mode="deployment", **WINDOW)
    env.reset(seed=0)
    table = env.unwrapped.decoder.table
    assert env.unwrapped.action_masks().all()
    env.step(0)
    mask = env.unwrapped.action_masks()
    assert mask.tolist() == (table.sum(axis=1) <= 6).tolist() and 0 < mask.sum() < len(table)
    cores = gym.make("InfAdapter-v0", budget_trace=[6], **WINDOW)
    cores.reset(seed=0)
    per_entry = cores.unwrapped.action_masks().reshape(5, 21)
    assert per_entry[:, :7].all() and not per_entry[:, 7:].any()
    assert gym.make("InfAdapter-v0").unwrapped.action_masks().all()  # no trace: everything fits


def test_the_batched_env_replays_the_scalar_env_with_a_budget_trace():
    kwargs = {"budget_trace": [20, 14, 8, 4, 20, 12], "action_mode": "deployment", "episode_length_s": 300}
    sync = gym.make_vec("InfAdapter-v0", num_envs=3, vectorization_mode="sync", **kwargs)
    batched = gym.make_vec("InfAdapter-v0", num_envs=3, vectorization_mode="vector_entry_point", **kwargs)
    np.testing.assert_array_equal(sync.reset(seed=3)[0], batched.reset(seed=3)[0])
    rng = np.random.default_rng(0)
    for _ in range(25):
        masks = batched.unwrapped.action_masks()
        expected = np.stack(sync.unwrapped.call("action_masks"))
        np.testing.assert_array_equal(masks, expected)
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        obs_s, rew_s, _, trunc_s, _ = sync.step(actions)
        obs_b, rew_b, _, trunc_b, _ = batched.step(actions)
        np.testing.assert_allclose(obs_b, obs_s, atol=1e-6)
        np.testing.assert_allclose(rew_b, rew_s, atol=1e-12)
        np.testing.assert_array_equal(trunc_b, trunc_s)


@pytest.mark.parametrize(
    ("trace", "message"),
    [
        ([20, 21], r"whole numbers in 0..budget_cores=20; entry 1 is 21"),
        ([], "non-empty"),
        ([20, 2.5], r"entry 1 is 2.5"),
        ([-1], r"entry 0 is -1"),
    ],
)
def test_bad_budget_traces_are_named(trace, message):
    with pytest.raises(ValueError, match=message):
        gym.make("InfAdapter-v0", budget_trace=trace)


def test_a_budget_trace_file(tmp_path):
    path = tmp_path / "budget.txt"
    path.write_text("20\n8\n")
    env = gym.make("InfAdapter-v0", budget_trace=str(path), **WINDOW)
    env.reset(seed=0)
    assert env.unwrapped.settings.budget_trace == (20, 8)
    path.write_text("20\neight\n")
    with pytest.raises(ValueError, match=r"budget.txt, value 2: 'eight' is not a whole number of cores"):
        gym.make("InfAdapter-v0", budget_trace=str(path))


def test_a_named_budget_pattern_fits_any_budget():
    from infadapter_env.core.settings import BUDGET_PATTERNS

    assert "tenant-then-failure" in BUDGET_PATTERNS
    env = gym.make("InfAdapter-v0", budget_trace="tenant-then-failure")
    trace = env.unwrapped.settings.budget_trace
    assert trace[:10] == (20,) * 10 and trace[10:20] == (12,) * 10 and trace[20:30] == (10,) * 10 and trace[30] == 20
    small = gym.make("InfAdapter-v0", budget_trace="tenant-then-failure", budget_cores=10)
    assert small.unwrapped.settings.budget_trace[10] == 6
    with pytest.raises(ValueError, match="named patterns: tenant-then-failure"):
        gym.make("InfAdapter-v0", budget_trace="tenant-then-crash")


@pytest.mark.parametrize("name", ["infadapter", "ms+", "oracle"])
def test_the_planners_plan_within_the_cores_available(name):
    # The tenant and the node failure of the named pattern: 12, then 10 of the 20 cores. A planner
    # that planned for the whole budget would have its deployments cut or refused by the env
    # (run_episode asserts that no action needed a fix).
    import infadapter_agents
    from tests.agents.test_agents import run_episode

    infos = run_episode(infadapter_agents.make(name), budget_trace="tenant-then-failure", scenario="paper")
    assert all(sum(info["cores_per_replica"]) <= info["available_cores"] for info in infos)
    assert sum(info["available_cores"] < 20 for info in infos) == 20  # the pattern's squeezed intervals


def test_a_deployment_planned_for_fewer_cores_is_not_held_when_they_come_back():
    # A node of 5 cores for one interval: InfAdapter falls back to what fits; when the 20 cores come
    # back, the stabiliser must not hold that squeezed deployment (the rate has not changed).
    import infadapter_agents

    env = gym.make("InfAdapter-v0", budget_trace=[20, 20, 20, 5, 20], scenario="paper")
    obs, info = env.reset(seed=0)
    agent = infadapter_agents.make("infadapter")
    agent.reset(info)
    agent.forecast = lambda observation, info: (150.0, 150.0)  # a steady planned rate
    capacity = []
    for _ in range(6):
        action = agent.act(obs, info)
        capacity.append(sum(agent.model.capacity(tuple(agent.decision_info()["cores"]))))
        obs, _, _, _, info = env.step(action)
    assert capacity[3] < 150.0  # the squeezed interval cannot serve it
    assert min(capacity[4:]) >= 150.0 and min(capacity[:3]) >= 150.0
