"""The batched vector env against the scalar env, and the batch forms of the objective."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from infadapter_env.core.objective import average_accuracy, average_accuracy_batch, loading_cost, loading_cost_batch
from infadapter_env.world.profiles import load_profile


def random_actions(space: gym.Space, rng: np.random.Generator, n: int) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, n)
    actions = np.stack([rng.integers(0, space.nvec) for _ in range(n)])
    # Random cores mostly exceed the budget; shrink most of them so that deployments happen.
    return np.where(rng.random(actions.shape) < 0.8, np.minimum(actions, rng.integers(0, 7, actions.shape)), actions)


def test_batched_env_builds_no_scalar_env(monkeypatch):
    """Both envs hold an ``EnvAssembly`` (spaces, decoder, pipeline, episode draws); the batched env
    neither builds a scalar env nor reads one's fields."""
    from infadapter_env.core.scalar_env import InfAdapterEnv

    def refuse(*args, **kwargs):
        raise AssertionError("the batched env built a scalar env")

    monkeypatch.setattr(InfAdapterEnv, "__init__", refuse)
    envs = gym.make_vec("InfAdapterShort-v0", num_envs=3, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    _, rewards, _, _, _ = envs.step(np.tile([2, 0, 0, 0, 4], (3, 1)))
    assert rewards.shape == (3,) and np.isfinite(rewards).all()


@pytest.mark.parametrize(
    ("env_id", "mode", "steps"),
    [
        ("InfAdapterShort-v0", "cores", 300),
        ("InfAdapterShort-v0", "replicas", 200),
        ("InfAdapterShort-v0", "deployment", 100),
        ("InfAdapter-v0", "cores", 100),
    ],
)
@pytest.mark.parametrize("autoreset", ["NextStep", "SameStep"])
def test_batched_env_replays_the_scalar_env(env_id, mode, steps, autoreset):
    sync = gym.make_vec(
        env_id, num_envs=5, vectorization_mode="sync", action_mode=mode, vector_kwargs={"autoreset_mode": autoreset}
    )
    batched = gym.make_vec(
        env_id, num_envs=5, vectorization_mode="vector_entry_point", action_mode=mode, autoreset_mode=autoreset
    )
    obs_s, info_s = sync.reset(seed=11)
    obs_b, info_b = batched.reset(seed=11)
    np.testing.assert_array_equal(obs_s, obs_b)
    np.testing.assert_array_equal(info_s["trace_start_s"], info_b["trace_start_s"])
    rng = np.random.default_rng(0)
    episodes_ended = 0
    for _ in range(steps):
        actions = random_actions(sync.single_action_space, rng, 5)
        obs_s, rew_s, term_s, trunc_s, info_s = sync.step(actions)
        obs_b, rew_b, term_b, trunc_b, info_b = batched.step(actions)
        np.testing.assert_allclose(obs_b, obs_s, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(rew_b, rew_s, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(term_b, term_s)
        np.testing.assert_array_equal(trunc_b, trunc_s)
        for key in ("violated", "dropped", "cores", "lc"):
            live = info_s.get(f"_{key}", np.zeros(5, dtype=bool))
            np.testing.assert_array_equal(info_b.get(f"_{key}", np.zeros(5, dtype=bool)), live)
            if live.any():
                np.testing.assert_allclose(info_b[key][live], info_s[key][live], rtol=1e-9, atol=1e-9)
        if autoreset == "SameStep" and trunc_s.any():
            np.testing.assert_allclose(info_b["final_obs"][trunc_s], np.stack(info_s["final_obs"][trunc_s]), atol=1e-6)
        episodes_ended += int(trunc_s.sum())
    assert episodes_ended > 0 or (env_id == "InfAdapter-v0" and steps < 42)


@pytest.mark.parametrize("dispatcher", ["accuracy_first", "quota"])
def test_threads_split_the_environments_without_changing_a_number(dispatcher):
    """200 environments over 3 threads (blocks of 66-68 rows, ``MIN_ENVS_PER_THREAD`` = 64), and over
    one: the same observations, rewards, ends and infos, through episode ends and resets."""
    from infadapter_env.sim.fast import MIN_ENVS_PER_THREAD

    n = 200
    assert n // MIN_ENVS_PER_THREAD >= 3
    made = [
        gym.make_vec(
            "InfAdapterShort-v0", num_envs=n, vectorization_mode="vector_entry_point", dispatcher=dispatcher, threads=k
        )
        for k in (1, 3)
    ]
    outs = [envs.reset(seed=3) for envs in made]
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(45):
        actions = random_actions(made[0].single_action_space, rng, n)
        one, three = (envs.step(actions) for envs in made)
        ended += int(one[3].sum())
        for a, b in zip(one[:4], three[:4], strict=True):
            np.testing.assert_array_equal(a, b)
        assert one[4].keys() == three[4].keys()
        for key in one[4]:
            np.testing.assert_array_equal(one[4][key], three[4][key], err_msg=key)
    assert ended >= n
    np.testing.assert_array_equal(outs[0][0], outs[1][0])


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2"])
def test_threads_must_be_a_positive_integer(threads):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        gym.make_vec("InfAdapter-v0", num_envs=2, vectorization_mode="vector_entry_point", threads=threads)


def test_reset_draws_a_window_per_env_and_reproduces_with_the_seed():
    envs = gym.make_vec("InfAdapterShort-v0", num_envs=16, vectorization_mode="vector_entry_point")
    _, first = envs.reset(seed=0)
    _, again = envs.reset(seed=0)
    np.testing.assert_array_equal(first["trace_start_s"], again["trace_start_s"])
    assert len(set(first["trace_start_s"].tolist())) == 16


def test_batched_actions_outside_the_space_name_the_env():
    envs = gym.make_vec("InfAdapter-v0", num_envs=3, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    bad = np.zeros((3, 5), dtype=np.int64)
    bad[2, 1] = 99
    with pytest.raises(ValueError, match="of environment 2 is outside the action space"):
        envs.step(bad)
    with pytest.raises(ValueError, match=r"shape \(3, 5\)"):
        envs.step(np.zeros((2, 5), dtype=np.int64))
    fractional = np.zeros((3, 5))
    fractional[1, 3] = np.nan
    with pytest.raises(ValueError, match="action of environment 1: entry 3 is nan; actions of mode 'cores' are whole"):
        envs.step(fractional)


def test_batch_forms_of_the_objective_equal_the_scalar_ones():
    profile = load_profile()
    rng = np.random.default_rng(1)
    cores = np.where(rng.random((200, 5)) < 0.5, 0, rng.integers(2, 12, (200, 5)))
    previous = np.where(rng.random((200, 5)) < 0.5, 0, rng.integers(2, 12, (200, 5)))
    replicas, previous_replicas = (cores > 0).astype(int), (previous > 0).astype(int)
    capacity = profile.capacity_rps(replicas, cores)
    rates = np.where(rng.random(200) < 0.1, 0.0, rng.uniform(0, 400, 200))
    batch_aa = average_accuracy_batch(capacity, profile.accuracy, rates)
    batch_lc = loading_cost_batch(previous_replicas, previous, replicas, cores, profile.load_time_s)
    for i in range(200):
        assert batch_aa[i] == pytest.approx(average_accuracy(capacity[i].tolist(), profile.accuracy.tolist(), rates[i]))
        scalar_lc = loading_cost(
            list(zip(previous_replicas[i], previous[i], strict=True)),
            list(zip(replicas[i], cores[i], strict=True)),
            profile.load_time_s.tolist(),
        )
        assert batch_lc[i] == pytest.approx(scalar_lc)
