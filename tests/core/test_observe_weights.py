"""The objective's weights in the observation (observe_weights) and a beta drawn per episode (betas)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from infadapter_env.core.observation import WEIGHT_FIELDS, observation_layout
from infadapter_env.core.scalar_env import InfAdapterEnv

SWEEP = (0.01, 0.02, 0.05, 0.1, 0.2)
DEPLOYMENT = np.array([0, 0, 8, 0, 8])


def test_observe_weights_appends_the_weights_and_leaves_the_default_layout_alone():
    plain, weighted = observation_layout(), observation_layout(observe_weights=True)
    assert plain.size == 46 and not hasattr(plain, "BETA")
    assert weighted.size == 49 and (weighted.ALPHA, weighted.BETA, weighted.GAMMA) == (46, 47, 48)
    assert [f.name for f in weighted.fields[-3:]] == list(WEIGHT_FIELDS)
    assert weighted.fields[:-3] == plain.fields  # every other field where it was
    doc = InfAdapterEnv.__doc__ or ""
    assert all(line in doc for line in weighted.markdown_table().splitlines())  # the weights' rows too
    assert "Box(shape=(46,)" in doc and "(49,) with ``observe_weights=True``" in doc
    assert gym.make("InfAdapter-v0").observation_space.shape == (46,)

    env = gym.make("InfAdapter-v0", observe_weights=True, beta=0.2)
    assert env.observation_space.shape == (49,)
    assert env.observation_space.high[46:].tolist() == [1.0, 1.0, 1.0]  # max(1, weight)
    obs, info = env.reset(seed=0)
    assert obs[46:].tolist() == pytest.approx([1.0, 0.2, 0.001]) and "beta" not in info
    assert env.unwrapped.layout.BETA == 47 and info["settings"]["observe_weights"] is True
    obs, *_ = env.step(DEPLOYMENT)
    assert obs[46:].tolist() == pytest.approx([1.0, 0.2, 0.001])
    high = gym.make("InfAdapter-v0", observe_weights=True, alpha=2.0, beta=0.5, betas=[0.1, 3.0]).observation_space.high
    assert high[46:].tolist() == [2.0, 3.0, 1.0]  # beta's bound covers every beta an episode may draw


def test_the_same_episode_scores_the_same_with_and_without_observed_weights():
    plain = gym.make("InfAdapter-v0", scenario="train", episode_length_s=600)
    weighted = gym.make("InfAdapter-v0", scenario="train", episode_length_s=600, observe_weights=True)
    a, _ = plain.reset(seed=3)
    b, _ = weighted.reset(seed=3)
    np.testing.assert_array_equal(a, b[:46])
    for _ in range(4):
        a, ra, *_ = plain.step(DEPLOYMENT)
        b, rb, *_ = weighted.step(DEPLOYMENT)
        np.testing.assert_array_equal(a, b[:46])
        assert ra == rb


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"betas": []}, "betas must be a non-empty list"),
        ({"betas": [0.1, -0.1]}, "betas must be a non-empty list of finite numbers >= 0"),
        ({"betas": "0.1"}, "betas must be"),
        ({"observe_weights": "yes"}, "observe_weights must be True or False"),
    ],
)
def test_bad_weight_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        gym.make("InfAdapter-v0", **settings)


def test_betas_draw_each_episodes_beta_at_reset_and_the_reward_uses_it():
    env = gym.make("InfAdapter-v0", scenario="train", episode_length_s=300, betas=SWEEP, observe_weights=True)
    again = gym.make("InfAdapter-v0", scenario="train", episode_length_s=300, betas=SWEEP, observe_weights=True)
    drawn, drawn_again = [], []
    env.reset(seed=5)
    again.reset(seed=5)
    for _ in range(12):  # episodes after the seeded one follow from the same generator
        obs, info = env.reset()
        drawn.append(info["settings"]["beta"])
        drawn_again.append(again.reset()[1]["settings"]["beta"])
        assert obs[47] == pytest.approx(drawn[-1])
        obs, reward, _, _, step_info = env.step(DEPLOYMENT)
        beta = drawn[-1]
        assert obs[47] == pytest.approx(beta)
        expected = step_info["aa_effective"] - beta * step_info["rc"] - 0.001 * step_info["lc"]
        assert reward == pytest.approx(expected) and step_info["reward_terms"]["resource"] == -beta * step_info["rc"]
    assert drawn == drawn_again and set(drawn) <= set(SWEEP) and len(set(drawn)) >= 3
    assert env.unwrapped.settings.beta == 0.05  # beta stays the scalar setting; the episode's is in the info
    assert env.unwrapped.settings.recorded()["betas"] == list(SWEEP)
    # Without betas nothing is drawn: the generator, the windows and the rewards are those of before.
    plain = gym.make("InfAdapter-v0", scenario="train", episode_length_s=300)
    assert plain.reset(seed=5)[1]["settings"]["beta"] == 0.05


@pytest.mark.parametrize("autoreset", ["NextStep", "SameStep"])
def test_the_batched_env_draws_a_beta_per_environment_as_the_scalar_env_does(autoreset):
    kwargs = {"betas": SWEEP, "observe_weights": True, "action_mode": "cores"}
    sync = gym.make_vec(
        "InfAdapterShort-v0",
        num_envs=4,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": autoreset},
        **kwargs,
    )
    batched = gym.make_vec(
        "InfAdapterShort-v0", num_envs=4, vectorization_mode="vector_entry_point", autoreset_mode=autoreset, **kwargs
    )
    obs_s, _ = sync.reset(seed=2)
    obs_b, info_b = batched.reset(seed=2)
    np.testing.assert_array_equal(obs_s, obs_b)
    np.testing.assert_array_equal(info_b["beta"], obs_b[:, 47].astype(float).round(6))
    betas_seen = set(info_b["beta"].tolist())
    for _ in range(45):  # two episodes and more of each environment
        actions = np.tile(DEPLOYMENT, (4, 1))
        obs_s, rew_s, _, trunc_s, _ = sync.step(actions)
        beta_before = obs_b[:, 47].astype(float)
        obs_b, rew_b, _, trunc_b, info_b = batched.step(actions)
        np.testing.assert_allclose(obs_b, obs_s, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(rew_b, rew_s, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(trunc_b, trunc_s)
        if autoreset == "SameStep":  # every step is a real step: its reward, its beta
            expected = info_b["aa_effective"] - beta_before * info_b["rc"] - 0.001 * info_b["lc"]
            np.testing.assert_allclose(rew_b, expected, rtol=1e-6)
        betas_seen |= set(obs_b[:, 47].astype(float).round(6).tolist())
    assert len(betas_seen) >= 3


def test_agents_read_the_layout_and_the_episodes_beta_from_the_reset_info():
    from infadapter_agents.base import PlanningView

    env = gym.make("InfAdapter-v0", observe_weights=True, betas=[0.2])
    _, info = env.reset(seed=0)
    settings = PlanningView.from_info(info)
    assert settings.layout.size == 49 and settings.weights.beta == 0.2
