"""The Gymnasium environment: API conformance, determinism, the reward, and bad input."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from infadapter_env import ENV_IDS, InfAdapterEnv
from infadapter_env.core.objective import Weights, objective_value
from infadapter_env.core.observation import observation_layout
from infadapter_env.world.traces import synthetic

layout = observation_layout()  # the shipped world's five variants

MODES = ("cores", "replicas", "deployment")


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("mode", MODES)
def test_gymnasium_and_sb3_checkers_pass_without_warnings(env_id, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(env_id, action_mode=mode)
        gym_check_env(env.unwrapped, skip_render_check=False)
        sb3_check_env(env.unwrapped, warn=True)


def rollout(env: gym.Env, seed: int, steps: int) -> list:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((obs, reward, info["violated"]))
        if terminated or truncated:
            obs, _ = env.reset()
            out.append(obs)
    return out


def assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, tuple):
            np.testing.assert_array_equal(x[0], y[0])
            assert x[1:] == y[1:]
        else:
            np.testing.assert_array_equal(x, y)


def test_same_seed_gives_identical_episodes():
    first = rollout(gym.make("InfAdapterShort-v0"), seed=3, steps=50)
    again = rollout(gym.make("InfAdapterShort-v0"), seed=3, steps=50)
    other = rollout(gym.make("InfAdapterShort-v0"), seed=4, steps=50)
    assert_same(first, again)
    with pytest.raises(AssertionError):
        assert_same(first, other)


def test_pickling_round_trips_mid_episode():
    env = gym.make("InfAdapter-v0")
    env.reset(seed=1)
    env.step(np.array([0, 0, 8, 0, 12]))
    clone = pickle.loads(pickle.dumps(env))
    action = np.array([4, 0, 0, 0, 16])
    a = env.step(action)
    b = clone.step(action)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] and a[4]["violated"] == b[4]["violated"]


def test_sync_vector_env_runs():
    envs = gym.make_vec("InfAdapterShort-v0", num_envs=3, vectorization_mode="sync")
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, layout.size)
    for _ in range(25):  # crosses the 20-step episode end: autoreset
        obs, reward, _, _, _ = envs.step(envs.action_space.sample())
    assert reward.shape == (3,)
    envs.close()


def test_paper_episode_has_42_steps_and_truncates():
    env = gym.make("InfAdapter-v0")
    env.reset(seed=0)
    for step in range(42):
        _, _, terminated, truncated, info = env.step(np.array([6, 0, 0, 0, 12]))
        assert not terminated
        assert truncated == (step == 41)
    assert info["time_s"] == 1260
    with pytest.raises(RuntimeError, match="episode has ended"):
        env.step(np.array([6, 0, 0, 0, 12]))


def test_reward_equals_the_objective_module_value():
    env = gym.make("InfAdapter-v0", beta=0.1, gamma=0.01)
    env.reset(seed=0)
    accuracy = env.unwrapped.profile.accuracy
    for action in ([0, 0, 8, 0, 12], [0, 0, 8, 0, 12], [10, 0, 0, 0, 10], [0, 0, 0, 0, 0]):
        _, reward, _, _, info = env.step(np.array(action))
        if info["arrivals"] > 0:
            aa = float(np.dot(accuracy, info["served_in_slo_by_variant"])) / info["arrivals"]
            assert info["aa_effective"] == pytest.approx(aa)
        assert reward == pytest.approx(
            objective_value(info["aa_effective"], info["rc"], info["lc"], Weights(1, 0.1, 0.01))
        )
        assert info["rc"] == sum(action) / 20
        terms = info["reward_terms"]
        assert reward == pytest.approx(terms["accuracy"] + terms["resource"] + terms["loading"])
        assert info["arrivals"] == pytest.approx(info["served_in_slo"] + info["violated"])


def test_loading_cost_counts_the_longest_started_or_resized_variant():
    env = gym.make("InfAdapter-v0")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0, 0, 8, 0, 12]))  # starts resnet50 and resnet152
    assert info["lc"] == pytest.approx(1.0)
    _, _, _, _, info = env.step(np.array([0, 0, 8, 0, 12]))  # unchanged
    assert info["lc"] == 0
    _, _, _, _, info = env.step(np.array([0, 0, 10, 0, 0]))  # resizes resnet50, removes resnet152
    assert info["lc"] == pytest.approx(6.82 / 8.52)


def test_effective_accuracy_counts_answers_in_slo_only():
    trace = synthetic("constant", 600, rate=60.0)
    env = gym.make("InfAdapter-v0", trace=trace)
    env.reset(seed=0)
    env.step(np.array([4, 0, 0, 0, 12]))
    _, _, _, _, info = env.step(np.array([4, 0, 0, 0, 12]))
    expected = (0.69758 * 21 + 0.78312 * 39) / 60
    # ResNet152 runs at its SLO capacity (39 req/s), where about 1 % of its answers exceed the SLO:
    # they count 0, so the effective accuracy is a little below the planned one.
    assert info["aa_planned"] == pytest.approx(expected)
    assert info["slo_violation_rate"] < 0.01
    in_slo = info["served_in_slo_by_variant"]
    assert info["aa_effective"] == pytest.approx((0.69758 * in_slo[0] + 0.78312 * in_slo[4]) / info["arrivals"])
    assert expected * 0.99 < info["aa_effective"] < expected


def test_action_rules_are_applied_and_flagged():
    env = gym.make("InfAdapter-v0")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1, 0, 0, 0, 0]))
    assert info["cores_per_replica"] == [2, 0, 0, 0, 0] and info["action_fix"] == "raised_to_min_cores"
    _, _, _, _, info = env.step(np.array([20, 0, 0, 0, 20]))
    assert info["cores_per_replica"] == [2, 0, 0, 0, 0] and info["action_fix"] == "over_budget_kept_previous"
    _, _, _, _, info = env.step(np.array([0, 0, 0, 0, 20]))
    assert info["action_fix"] is None


def test_over_budget_scale_fits_the_budget_by_the_documented_rule():
    env = gym.make("InfAdapter-v0", over_budget="scale")  # budget 20, min cores 2
    env.reset(seed=0)
    # 30 cores asked: x 20/30 -> floor(6.67) = 6 each, 18 cores.
    _, _, _, _, info = env.step(np.array([10, 10, 10, 0, 0]))
    assert info["cores_per_replica"] == [6, 6, 6, 0, 0] and info["action_fix"] == "over_budget_scaled"
    # 28 asked: x 20/28 -> 1.43 -> min 2, and floor(14.29) = 14: 22 cores; ResNet152 gives up 2 more.
    _, _, _, _, info = env.step(np.array([2, 2, 2, 2, 20]))
    assert info["cores_per_replica"] == [2, 2, 2, 2, 12] and info["cores"] == 20
    horizontal = gym.make("InfAdapter-v0", over_budget="scale", action_mode="replicas")
    horizontal.reset(seed=0)
    # 3 x 8 + 2 x 10 = 44 asked: x 20/44 -> floor(3.64) = 3 and floor(4.55) = 4: 3 x 3 + 2 x 4 = 17.
    _, _, _, _, info = horizontal.step(np.array([3, 0, 0, 0, 2, 8, 0, 0, 0, 10]))
    assert info["cores_per_replica"] == [3, 0, 0, 0, 4] and info["replicas"] == [3, 0, 0, 0, 2]
    # 10 x 2 + 1 x 2 = 22 with every replica at min cores already: cannot fit, the previous one stays.
    _, _, _, _, info = horizontal.step(np.array([10, 0, 0, 0, 1, 2, 0, 0, 0, 2]))
    assert info["cores_per_replica"] == [3, 0, 0, 0, 4] and info["action_fix"] == "over_budget_kept_previous"
    with pytest.raises(ValueError, match="over_budget must be one of 'reject', 'scale'"):
        gym.make("InfAdapter-v0", over_budget="shrink")


def test_replicas_mode_scales_horizontally():
    env = gym.make("InfAdapter-v0", action_mode="replicas")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0, 0, 3, 0, 0, 0, 0, 4, 0, 0]))
    assert info["replicas"] == [0, 0, 3, 0, 0] and info["cores"] == 12
    assert info["capacity_rps"][2] == 3 * 36


def test_deployment_mode_and_masks():
    env = gym.make("InfAdapter-v0", action_mode="deployment")
    env.reset(seed=0)
    assert env.action_space.n == 20_529
    masks = env.unwrapped.action_masks()
    assert masks.shape == (20_529,) and masks.all()
    action = env.unwrapped.encode_action([0, 0, 1, 0, 1], [0, 0, 8, 0, 12])
    _, _, _, _, info = env.step(action)
    assert info["cores_per_replica"] == [0, 0, 8, 0, 12]


def test_ansi_render_summarises_the_interval():
    env = gym.make("InfAdapter-v0", render_mode="ansi")
    env.reset(seed=0)
    env.step(np.array([0, 0, 8, 0, 12]))
    text = env.render()
    assert "step 1 (t=30 s)" in text and "resnet152" in text and "reward" in text


def test_observation_reports_history_and_deployment():
    env = gym.make("InfAdapter-v0")
    obs, _ = env.reset(seed=0)
    history = env.unwrapped._episode.history
    assert obs[9] == history[-60:].max() and obs[0] == history[:60].max()
    obs, _, _, _, _ = env.step(np.array([0, 0, 8, 0, 12]))
    assert obs[12:17].tolist() == [0, 0, 8, 0, 12] and obs[17:22].tolist() == [0, 0, 1, 0, 1]
    assert obs[40] == pytest.approx(1 / 42)


def test_a_fixed_episode_is_prepared_once_and_replays_the_same():
    env = gym.make("InfAdapter-v0", scenario="train", episode_length_s=600, window_start_s=3600)
    env.reset(seed=0)
    first = [env.step(np.array([0, 0, 8, 0, 12]))[4] for _ in range(5)]
    per_tick = env.unwrapped._per_tick
    env.reset(seed=1)
    assert env.unwrapped._per_tick is per_tick and not per_tick.flags.writeable
    assert not env.unwrapped._minute_peaks.flags.writeable
    assert [env.step(np.array([0, 0, 8, 0, 12]))[4] for _ in range(5)] == first
    drawn = gym.make("InfAdapter-v0", scenario="train", episode_length_s=600)
    drawn.reset(seed=0)
    starts = {drawn.reset()[1]["trace_start_s"] for _ in range(5)}
    assert len(starts) > 1  # drawn windows are prepared at every reset


@pytest.mark.filterwarnings("ignore:.*render_mode='video'")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budjet_cores": 10}, r"unknown InfAdapter-v0 setting\(s\) \['budjet_cores'\]; valid settings: "),
        ({"interval_s": 0}, "interval_s must be an integer in 1..3600"),
        ({"slo_ms": 800}, "slo_ms must be one of 500, 750, 1000, 1500"),
        ({"beta": -1}, "objective weight beta must be a finite number >= 0"),
        ({"dispatcher": "random"}, "dispatcher must be one of"),
        ({"action_mode": "continuous"}, "action_mode must be one of"),
        ({"scenario": "day7"}, "scenario must be one of"),
        ({"rate_multiplier": 0}, "rate_multiplier must be a finite number > 0"),
        ({"episode_length_s": 10**7}, "exceeds trace"),
        ({"render_mode": "video"}, "render_mode must be None, 'ansi' or 'rgb_array'"),
        ({"arrivals": "loadgen"}, "the fast simulator assumes Poisson arrivals within each second"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("InfAdapter-v0", **kwargs)
    if "render_mode" not in kwargs:  # the batched env checks the same settings
        with pytest.raises(ValueError, match=message):
            gym.make_vec("InfAdapter-v0", num_envs=2, vectorization_mode="vector_entry_point", **kwargs)


@pytest.mark.parametrize("action", [[0, 0, 21, 0, 0], [0, 0, -1, 0, 0], [1, 2, 3], [0.5, 0, 0, 0, 0], "x"])
def test_actions_outside_the_space_are_rejected(action):
    env = gym.make("InfAdapter-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(np.array(action) if not isinstance(action, str) else action)


@pytest.mark.parametrize("action", [np.array([5]), np.array([[5]]), 20529, -1, 5.5, True])
def test_deployment_actions_are_one_integer_in_range(action):
    """The scalar env's short path for integer arrays is the MultiDiscrete modes'; a deployment
    action of shape (1,) is refused as before, not played as deployment 5."""
    env = gym.make("InfAdapter-v0", action_mode="deployment")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"outside the action space|whole numbers"):
        env.unwrapped.step(action)
    assert env.unwrapped.step(np.int64(5))[4]["cores_per_replica"] == env.unwrapped.step(5)[4]["cores_per_replica"]


def test_step_before_reset_is_an_error():
    with pytest.raises(RuntimeError, match="reset"):
        InfAdapterEnv().step(np.zeros(5, dtype=np.int64))
    with pytest.raises(gym.error.ResetNeeded):
        gym.make("InfAdapter-v0").step(np.zeros(5, dtype=np.int64))


def test_malformed_trace_file_is_reported_by_the_env(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text("10 11\n12 NaN\n")
    with pytest.raises(ValueError, match=r"trace.txt, line 2: 'NaN' is not finite"):
        gym.make("InfAdapter-v0", trace=str(path))


def test_observation_layout_names_match_the_observation():

    env = gym.make("InfAdapter-v0", action_mode="replicas")
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.array([1, 0, 2, 0, 1, 6, 0, 4, 0, 12]))
    assert obs.shape == (layout.size,)
    assert obs[layout.CORES].tolist() == info["cores_per_replica"]
    assert obs[layout.REPLICAS].tolist() == info["replicas"]
    assert obs[layout.MEAN_RATE] == pytest.approx(info["mean_rate_rps"])
    assert obs[layout.PEAK_RATE] == info["peak_rate_rps"]
    assert obs[layout.VIOLATION_RATE] == pytest.approx(info["slo_violation_rate"])
    assert obs[layout.RESOURCE_COST] == pytest.approx(info["rc"])
    np.testing.assert_allclose(obs[layout.UTILISATION], info["utilisation"], rtol=1e-6)


def test_reset_info_counts_real_history_minutes():
    _, info = gym.make("InfAdapter-v0").reset(seed=0)
    assert info["history_minutes"] == 10
    _, info = gym.make("InfAdapter-v0", trace=synthetic("constant", 300)).reset(seed=0)
    assert info["history_minutes"] == 0


def test_fixed_window_replays_the_same_seconds_of_the_trace():
    from infadapter_env.world.traces import scenario

    env = gym.make("InfAdapter-v0", scenario="test", episode_length_s=600, window_start_s=3_600)
    _, info = env.reset(seed=5)
    assert info["trace_start_s"] == scenario("test").start_s + 3_600
    with pytest.raises(ValueError, match="window_start_s needs episode_length_s"):
        gym.make("InfAdapter-v0", window_start_s=10)


def test_initial_cores_start_warm():
    env = gym.make("InfAdapter-v0", initial_cores=(0, 0, 8, 0, 12))
    obs, _ = env.reset(seed=0)
    assert obs[12:17].tolist() == [0, 0, 8, 0, 12] and obs[39] == 1.0
    _, _, _, _, info = env.step(np.array([0, 0, 8, 0, 12]))
    assert info["lc"] == 0 and info["dropped"] == 0
    assert info["served_in_slo"] == pytest.approx(info["arrivals"], rel=1e-6)
    with pytest.raises(ValueError, match="initial_cores must give 5 core counts"):
        gym.make("InfAdapter-v0", initial_cores=(1, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="summing to at most budget_cores=20"):
        gym.make("InfAdapter-v0", initial_cores=(20, 0, 0, 0, 2))


def test_rgb_array_render_and_sb3_standard_entry_points():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    env = gym.make("InfAdapter-v0", render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    for _ in range(3):
        env.step(np.array([0, 0, 8, 0, 12]))
    after = env.render()
    assert before.shape == after.shape == (400, 640, 3) and after.dtype == np.uint8
    assert not np.array_equal(before, after)  # the picture grows with the episode
    vec = make_vec_env("InfAdapter-v0", n_envs=2)  # SB3 asks for rgb_array by default
    assert vec.reset().shape == (2, layout.size)
    assert PPO("MlpPolicy", "InfAdapter-v0", n_steps=8, batch_size=8).learn(8) is not None


def test_record_video_writes_the_episode(tmp_path):
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(
        gym.make("InfAdapter-v0", render_mode="rgb_array", episode_length_s=150, window_start_s=0),
        str(tmp_path),
        episode_trigger=lambda _: True,
    )
    env.reset(seed=0)
    truncated = False
    while not truncated:
        truncated = env.step(np.array([0, 0, 8, 0, 12]))[3]
    env.close()
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_the_observation_layout_has_one_definition():
    import gymnasium as gym

    from infadapter_env.core.scalar_env import InfAdapterEnv

    # The env docstring's table and size come from layout.fields, which also fixes every index.
    doc = InfAdapterEnv.__doc__ or ""
    assert "{observation_table}" not in doc and "{observation_size}" not in doc
    table = layout.markdown_table()
    assert all(line in doc for line in table.splitlines())
    assert f"Box(shape=({layout.size},)" in doc
    assert sum(field.size for field in layout.fields) == layout.size == 46
    assert (layout.CORES.start, layout.P99_OVER_SLO.stop, layout.PROGRESS) == (12, 46, 40)
    env = gym.make("InfAdapter-v0")
    assert env.observation_space.shape == (layout.size,)
    assert env.observation_space.high[layout.P99_OVER_SLO].tolist() == [20.0] * 5
    with pytest.raises(ValueError, match="no upper bound given for observation field"):
        layout.upper_bounds({"MEAN_RATE": 1.0})


def test_vector_reward_mode_returns_the_objectives_terms():
    kwargs = {"reward_mode": "vector", "beta": 0.05}
    env = gym.make("InfAdapter-v0", disable_env_checker=True, **kwargs)
    env.reset(seed=0)
    assert env.unwrapped.reward_space.shape == (3,)
    vector = gym.make_vec("InfAdapter-v0", num_envs=2, vectorization_mode="vector_entry_point", **kwargs)
    vector.reset(seed=0)
    for action in ([0, 0, 8, 0, 12], [0, 0, 8, 0, 12], [12, 0, 0, 0, 0]):
        _, reward, _, _, info = env.step(np.array(action))
        assert reward.dtype == np.float32 and env.unwrapped.reward_space.contains(reward)
        assert reward[0] == pytest.approx(info["aa_effective"]) and reward[1] == pytest.approx(-info["rc"])
        assert reward[2] == pytest.approx(-info["lc"])
        assert np.dot([1.0, 0.05, 0.001], reward) == pytest.approx(info["reward"], abs=1e-6)
        _, rewards, _, _, _ = vector.step(np.array([action, action]))
        assert rewards.shape == (2, 3) and rewards[0] == pytest.approx(reward, abs=1e-6)
    with pytest.raises(ValueError, match="reward_mode must be one of 'scalar', 'vector'"):
        gym.make("InfAdapter-v0", reward_mode="pareto")


def test_bad_actions_name_the_entry_and_are_never_flattened():
    env = gym.make("InfAdapter-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"entry 2 is nan"):
        env.step(np.array([0, 0, np.nan, 0, 12]))
    with pytest.raises(ValueError, match=r"entry 4 is inf"):
        env.step(np.array([0, 0, 8, 0, np.inf]))
    with pytest.raises(ValueError, match=r"expected 5 integers \(a 1-D array\).*\(got shape \(1, 5\)\)"):
        env.step(np.array([[0, 0, 8, 0, 12]]))


def test_vector_env_refuses_step_before_reset():
    from gymnasium.error import ResetNeeded

    vector = gym.make_vec("InfAdapter-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ResetNeeded, match="call reset"):
        vector.step(np.array([[0, 0, 8, 0, 12]] * 2))


def test_the_former_names_of_the_settings_still_answer_with_a_warning():
    import infadapter_env
    from infadapter_env.core.settings import EnvSettings

    with pytest.warns(DeprecationWarning, match="infadapter_env.EnvConfig is now infadapter_env.EnvSettings"):
        assert infadapter_env.EnvConfig is EnvSettings
    env = gym.make("InfAdapter-v0").unwrapped
    with pytest.warns(DeprecationWarning, match="env.config is now env.settings"):
        assert env.config is env.settings


def test_the_agents_copy_of_an_info_equals_it_and_is_its_own():
    from infadapter_env.core.rollout import private_copy

    env = gym.make("InfAdapter-v0")
    _, reset_info = env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([12, 0, 0, 0, 8]))
    for original in (reset_info, info):
        mine = private_copy(original)
        assert mine == original
        for key, value in original.items():
            if isinstance(value, dict | list):
                assert mine[key] is not value
    before = private_copy(info)
    mine = private_copy(info)
    mine["replicas"][0] = 99
    next(iter(mine["reward_terms"].values()))  # a nested dict of its own too
    mine["reward_terms"].clear()
    assert info == before
