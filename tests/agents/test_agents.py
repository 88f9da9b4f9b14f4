"""Every agent: runs on the environment, and behaves as its source says on loads with known answers."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import infadapter_agents
from infadapter_agents.forecast.forecasters import Stabiliser, ewm_mean
from infadapter_env.world.traces import synthetic


def run_episode(agent: infadapter_agents.Agent, **env_kwargs) -> list[dict]:
    env = gym.make("InfAdapter-v0", **env_kwargs)
    obs, info = env.reset(seed=0)
    agent.reset(info)
    infos = []
    while True:
        action = agent.act(obs, info)
        assert env.action_space.contains(np.asarray(action) if not np.isscalar(action) else action), action
        obs, _, terminated, truncated, info = env.step(action)
        assert info["action_fix"] is None, (agent.name, info["action_fix"])
        infos.append(info)
        if terminated or truncated:
            return infos


@pytest.mark.parametrize("name", infadapter_agents.names())
def test_every_agent_plays_a_whole_paper_episode_with_valid_actions(name):
    infos = run_episode(infadapter_agents.make(name), action_mode="replicas")
    assert len(infos) == 42


@pytest.mark.parametrize("name", ["infadapter", "ms+", "oracle", "vpa-50", "autopilot", "static-over"])
def test_vertical_agents_also_speak_the_cores_and_deployment_modes(name):
    assert len(run_episode(infadapter_agents.make(name), action_mode="cores")) == 42
    assert len(run_episode(infadapter_agents.make(name), action_mode="deployment")) == 42


def test_unknown_agent_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown agent 'vpa'; valid agents: infadapter, ms\+, oracle, vpa-18"):
        infadapter_agents.make("vpa")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "infadapter",
            {"forecaster": "arima"},
            "unknown forecaster 'arima'; valid forecasters: lstm, lstm-scaled, lstm-keras, ewm, last, oracle",
        ),
        ("infadapter", {"solver": "gurobi"}, "unknown solver 'gurobi'"),
        ("vpa-50", {"update_mode": "auto"}, "unknown VPA update mode"),
        ("hpa", {"variant": "vgg16"}, r"unknown variant 'vgg16' in this world .*; its variants: resnet18 \(18\)"),
    ],
)
def test_bad_agent_options_are_named(name, options, message):
    # Options are checked when the agent is made, a variant when it meets the env's world at reset.
    with pytest.raises(ValueError, match=message):
        agent = infadapter_agents.make(name, **options)
        _, info = gym.make("InfAdapter-v0", action_mode="replicas").reset(seed=0)
        agent.reset(info)


def test_replica_agents_need_the_replicas_action_mode():
    env = gym.make("InfAdapter-v0")
    _, info = env.reset(seed=0)
    with pytest.raises(ValueError, match="needs action_mode='replicas'"):
        infadapter_agents.make("hpa").reset(info)


def test_oracle_has_almost_no_violations_on_a_feasible_trace():
    # The paper slice peaks at 274 req/s, within the budget; start warm so no load gap opens at t = 0.
    infos = run_episode(infadapter_agents.make("oracle"), initial_cores=(0, 0, 8, 0, 12))
    # Servers run at or below their SLO capacity, where at most ~1 % of requests exceed the SLO;
    # the oracle keeps them far enough below it that violations are a rounding error.
    assert sum(i["violated"] for i in infos) < 1e-3 * sum(i["arrivals"] for i in infos)
    assert sum(i["arrivals"] for i in infos) == 121_697  # every request of the paper slice


def test_oracle_reads_a_trace_file_again_and_refuses_an_array(tmp_path):
    from infadapter_agents.forecast.forecasters import OracleForecaster

    counts = np.r_[np.full(60, 40.0), np.full(60, 160.0)]
    path = tmp_path / "step.txt"
    path.write_text("\n".join(f"{c:g}" for c in counts) + "\n")
    env = gym.make("InfAdapter-v0", trace=str(path), rate_multiplier=2.0)
    _, info = env.reset(seed=0)
    oracle = OracleForecaster()
    oracle.reset(info)
    assert oracle.predict(np.zeros(10), info) == 80.0  # the first 39 s, at twice the file's rate
    assert oracle.predict(np.zeros(10), info | {"time_s": 30}) == 320.0  # reaches the step at 60 s
    _, info = gym.make("InfAdapter-v0", trace=counts).reset(seed=0)
    with pytest.raises(ValueError, match="given as an array: pass arrivals"):
        oracle.reset(info)


def test_infadapter_with_ilp_and_fast_solver_play_the_same_episode():
    fast = run_episode(infadapter_agents.make("infadapter", solver="fast"))
    ilp = run_episode(infadapter_agents.make("infadapter", solver="ilp"))
    assert [i["reward"] for i in fast] == pytest.approx([i["reward"] for i in ilp], abs=1e-9)


def test_infadapter_lstm_agent_reports_its_decisions():
    agent = infadapter_agents.make("infadapter")
    infos = run_episode(agent)
    decision = agent.decision_info()
    assert decision["forecast_rps"] > 0 and decision["planned_rate_rps"] >= decision["forecast_rps"]
    assert not decision["fallback"] and sum(i["violated"] for i in infos) < sum(i["arrivals"] for i in infos)


def test_an_unservable_rate_is_flagged_not_raised():
    agent = infadapter_agents.make("infadapter", forecaster="last", stabilise=False)  # else the same rate is skipped
    run_episode(agent, trace=synthetic("constant", 300, rate=900.0))
    assert agent.decision_info()["fallback"] is True
    assert agent.decision_info()["cores"] == [20, 0, 0, 0, 0]


def test_stabiliser_acts_on_the_fifth_lower_or_equal_rate_and_on_a_higher_one_at_once():
    # The paper code: skip while rate <= the rate in place and fewer than 4 were skipped.
    stabiliser = Stabiliser(4)
    rates = [100, 120, 90, 95, 80, 85, 130, 70, 70, 70, 70, 70, 70]
    acted = [stabiliser.update(x) for x in rates]
    assert acted == [True, True, False, False, False, False, True, False, False, False, False, True, False]
    assert stabiliser.level == 70
    equal = Stabiliser(4)
    equal.reset(level=100.0)  # a starting deployment planned for 100 req/s
    assert [equal.update(100.0) for _ in range(5)] == [False, False, False, False, True]


def test_ewm_matches_pandas_adjusted_mean():
    pandas = pytest.importorskip("pandas")
    values = np.array([50.0, 80, 65, 90, 120, 70])
    assert ewm_mean(values) == pytest.approx(pandas.Series(values).ewm(span=10).mean().iloc[-1])


STEP_UP = synthetic("step", 1800, low=30, high=150, at_s=600)  # the step starts interval 21


def trajectory(name: str, trace, key: str) -> list[int]:
    infos = run_episode(infadapter_agents.make(name), trace=trace, action_mode="replicas")
    return [i[key][2] for i in infos]  # ResNet50, the variant these baselines scale


def test_vpa_scales_up_once_its_histogram_catches_up():
    cores = trajectory("vpa-50", STEP_UP, "cores_per_replica")
    # One sample per minute (the first at t = 30 s), weighted by the allocated cores. At 30 req/s
    # ResNet50 at 8 cores is 33 % busy: 2.66 cores, target ceil(2.7 x 1.15) = 4, lower than 8: the
    # decisions at t = 0 (no sample: an equal target), 30, 60 and 90 s are skipped, the 5th applies.
    assert cores[:4] == [8] * 4 and cores[4] == 4
    # Before the step the samples weigh 3 x 8 + 8 x 4 = 56. Overloaded samples (4 cores, weight
    # 4) come at t = 660 and 720 s; the 90th percentile moves once they weigh more than 10 %:
    # 4 / 60 < 0.1 < 8 / 64, so the decision at t = 720 s (index 24) scales up at once.
    assert cores[20:24] == [4] * 4
    assert cores[24] == 5
    assert cores[-1] > 15  # and it keeps growing by its 15 % margin until usage fits


def test_hpa_scales_out_quickly_and_in_only_after_its_window():
    replicas = trajectory("hpa", STEP_UP, "replicas")
    # A ResNet50 replica of 4 cores completes 46.7 req/s: 30 req/s keep it 64 % busy, within the
    # 10 % tolerance of the 70 % target, so one replica stays.
    assert replicas[19] == 1
    # The step starts interval 21 and is seen after it. At 150 req/s every replica is saturated
    # (busy 1.0): ceil(1 / 0.7) = 2, ceil(2 / 0.7) = 3, ceil(3 / 0.7) = 5; five replicas are 64 % busy.
    assert replicas[20:25] == [1, 2, 3, 5, 5]
    step_down = synthetic("step", 2400, low=150, high=30, at_s=900)  # the drop starts interval 31
    replicas = trajectory("hpa", step_down, "replicas")
    assert replicas[30:40] == [5] * 10  # held for the 300 s (10-interval) stabilisation window
    assert replicas[40] == 1  # 30 req/s on 5 x 46.7: 13 % busy, ceil(5 x 0.13 / 0.7) = 1


def test_static_over_has_almost_no_violations_and_static_under_violates_at_peaks():
    over = infadapter_agents.make("static-over")
    infos = run_episode(over, initial_cores=(13, 0, 7, 0, 0))
    assert sum(i["violated"] for i in infos) < 1e-4 * sum(i["arrivals"] for i in infos)
    assert all(i["cores"] == 20 for i in infos)
    under = run_episode(infadapter_agents.make("static-under"), initial_cores=(0, 0, 13, 0, 0))
    capacity = sum(under[0]["capacity_rps"])
    # Violations almost all where the load exceeded the capacity in that interval or the one before
    # (a queue built at a peak drains into the next interval); elsewhere only the latency tail.
    overloaded = [i["peak_rate_rps"] > capacity for i in under]
    at_peaks = sum(i["violated"] for k, i in enumerate(under) if overloaded[k] or overloaded[k - 1])
    assert at_peaks > 0.99 * sum(i["violated"] for i in under)
    assert sum(i["violated"] for i in under) > 0.3 * sum(i["arrivals"] for i in under)


def test_vpa_bounds_are_scaled_by_the_recommenders_confidence():
    agent = infadapter_agents.make("vpa-50", update_mode="bounds", min_replicas=1)
    run_episode(agent, trace=synthetic("constant", 600, rate=30.0), action_mode="replicas")
    # One sample per minute-long period, at the first decision in it: t = 30, 60, 120, ..., 540 s,
    # ten samples over 510 s; the confidence is the smaller of 510 / 86,400 days and 10 / 1,440.
    assert agent.samples == 10 and agent.confidence_days() == pytest.approx(min(510 / 86_400, 10 / 1_440))
    c = agent.confidence_days()
    p50, p95 = (agent.histogram.percentile(q) * 1.15 for q in (0.5, 0.95))
    rec = agent.recommend()
    assert rec["lower"] == max(math.ceil(p50 * (1 + 0.001 / c) ** -2), 2)
    assert rec["upper"] == min(max(math.ceil(p95 * (1 + 1 / c)), 2), 20)  # 160 x the 95th percentile: the budget


def test_the_vpa_updater_leaves_a_single_pod_alone_unless_min_replicas_is_1():
    # Under bounds the upper bound is unbounded within an episode (no shrinking), and the lower
    # bound follows the load once the pod is too small: the step from 30 to 150 req/s.
    start = {"initial_cores": 4}
    held = trajectory_of(infadapter_agents.make("vpa-50", update_mode="bounds", **start))
    assert set(held) == {4}  # the updater's default --min-replicas=2: a single pod is never evicted
    moved = trajectory_of(infadapter_agents.make("vpa-50", update_mode="bounds", min_replicas=1, **start))
    assert moved[:20] == [4] * 20  # 30 req/s fit 4 cores: inside [lower, upper]
    assert max(moved) > 4 and moved == sorted(moved)  # raised after the step, never lowered


def trajectory_of(agent) -> list[int]:
    return [i["cores_per_replica"][2] for i in run_episode(agent, trace=STEP_UP, action_mode="replicas")]


def test_a_schedule_plays_its_plan_and_names_a_phase_it_cannot_read():
    from infadapter_agents.baselines.schedule import ScheduleAgent, parse_plan
    from infadapter_env.core.rollout import play_steps

    agent = ScheduleAgent(plan="0:resnet18@2;3:resnet34@2+resnet50@4")  # make() would register it for later tests
    played = play_steps(agent, {"episode_length_s": 180}, seed=0)
    assert played.actions == [[2, 0, 0, 0, 0]] * 3 + [[0, 2, 4, 0, 0]] * 3
    assert played.infos[2]["cores_per_replica"] == [2, 0, 0, 0, 0]
    assert played.infos[-1]["cores_per_replica"] == [0, 2, 4, 0, 0]
    with pytest.raises(ValueError, match="unknown variant 'resnet19'"):
        parse_plan("0:resnet19@1", ("resnet18", "resnet34"))
    with pytest.raises(ValueError, match="start at interval 0"):
        parse_plan("2:resnet18@1", ("resnet18", "resnet34"))
    with pytest.raises(ValueError, match="needs @<cores>"):
        parse_plan("0:resnet18", ("resnet18", "resnet34"))
