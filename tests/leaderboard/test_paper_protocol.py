"""Protocol paper-2023: the original experiment's start, hold, VPA, forecaster and dispatcher rules,
each on a small synthetic case with a hand-computed answer, and the protocol end to end."""

from __future__ import annotations

import csv
import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest

import infadapter_agents
from infadapter_agents.baselines.vpa import VPAAgent
from infadapter_agents.forecast.forecasters import ewm_mean
from infadapter_env.core.observation import observation_layout
from infadapter_env.core.rollout import episode_metrics, play, replay
from infadapter_env.leaderboard.protocol import PROTOCOLS, env_kwargs, paper_contenders
from infadapter_env.leaderboard.store import to_frame
from infadapter_env.leaderboard.summary import write_summary
from infadapter_env.leaderboard.sweep import resolve_agents
from infadapter_env.world.profiles import load_profile
from infadapter_env.world.traces import synthetic
from infadapter_scripts import leaderboard, validate
from tests.leaderboard.test_aggregate import row as aggregate_row

layout = observation_layout()  # the shipped world's five variants

PAPER_ENV = {"simulator": "request", "arrivals": "loadgen", "dispatcher": "quota", "action_mode": "replicas"}


def quota_env(rate: float, initial_cores: tuple[int, ...], simulator: str = "fast", length_s: int = 120) -> gym.Env:
    """A quota-dispatcher env on a constant load, starting from ``initial_cores`` (loaded)."""
    return gym.make(
        "InfAdapter-v0",
        trace=synthetic("constant", length_s, rate=rate),
        dispatcher="quota",
        simulator=simulator,
        initial_cores=initial_cores,
    )


def test_the_protocol_is_the_original_experiment():
    protocol = PROTOCOLS["paper-2023"]
    assert list(protocol.scenarios) == ["paper"] and protocol.seeds == (0, 1, 2, 3, 4)
    contenders = paper_contenders()
    assert sorted(contenders) == sorted(
        ["infadapter", "ms+"]
        + [f"vpa-{d}/{u}" for u in ("throttled", "busy") for d in (18, 34, 50, 101, 152)]
        + [f"resnet{d}@20" for d in (18, 34, 50, 101, 152)]
    )
    kwargs = env_kwargs(protocol.scenarios["paper"], 0.05, "paper-2023", contenders["infadapter"])
    assert kwargs["initial_cores"] == (0, 0, 0, 0, 20)
    assert {k: kwargs[k] for k in PAPER_ENV} == PAPER_ENV
    vpa = contenders["vpa-34/busy"]
    assert env_kwargs(protocol.scenarios["paper"], 0.05, "paper-2023", vpa)["initial_cores"] == (0, 20, 0, 0, 0)
    assert vpa.options == {
        "initial_cores": 20,
        "created_s": 60,
        "sample_period_s": 60,
        "first_decision_s": 120,
        "usage": "busy",
    }


def test_infadapter_starts_loaded_holds_two_minutes_then_stabilises():
    """40 req/s, starting as ResNet152 x 20 cores (planned capacity 59.2 req/s, linear fit x 0.8).

    t = 0 .. 90 s: held (no decision for 2 minutes). From t = 120 s the EWM forecast is 40 x 1.1 =
    44 req/s, at or below the 59.2 the deployment was planned for: skipped at t = 120, 150, 180
    and 210 s; the 5th, at t = 240 s (step 8), is acted on."""
    assert load_profile(750, "linear_fit", 2).per_replica_rps[4, 20] == pytest.approx(59.23, abs=0.01)
    env = gym.make("InfAdapter-v0", trace=synthetic("constant", 300, rate=40.0), initial_cores=(0, 0, 0, 0, 20))
    agent = infadapter_agents.make("infadapter", forecaster="ewm", first_decision_s=120, history="run")
    obs, info = env.reset(seed=0)
    agent.reset(info)
    flags, cores = [], []
    for _ in range(10):
        action = agent.act(obs, info)
        decision = agent.decision_info()
        flags.append("held" if decision.get("held") else "skip" if decision.get("stabilised") else "act")
        obs, _, _, _, info = env.step(action)
        cores.append(info["cores_per_replica"])
        if len(flags) == 1:  # loaded before the load starts: the first interval is served by ResNet152
            assert info["served_in_slo_by_variant"][4] == info["arrivals"] > 0
    assert flags == ["held"] * 4 + ["skip"] * 4 + ["act", "skip"]
    assert cores[:8] == [[0, 0, 0, 0, 20]] * 8
    assert cores[8] != [0, 0, 0, 0, 20]  # 44 req/s is served with fewer cores


def test_vpa_applies_a_higher_target_at_once_and_the_fifth_lower_or_equal_one():
    vpa = VPAAgent("resnet50", initial_cores=20)
    vpa.reset({"settings": gym.make("InfAdapter-v0").unwrapped.settings.recorded()})
    seen = []
    for target in [8, 8, 8, 8, 8, 8, 12, 12, 12, 12, 12, 15]:
        vpa.decide(target)
        seen.append(vpa.cores)
    # 8 <= 20: skipped 4 times, applied the 5th; then 8 <= 8 and 12 > 8 (at once); 12 <= 12 skipped
    # 4 times (the count was reset when 12 was applied); 15 > 12 at once.
    assert seen == [20, 20, 20, 20, 8, 8, 12, 12, 12, 12, 12, 15]


def test_vpa_samples_from_its_creation_and_decides_after_the_hold():
    """ResNet50 at 20 cores on 60 req/s. The VPA object exists from t = 60 s and samples once a
    minute; decisions start at t = 120 s. Before that the deployment is kept; at t = 120 s there are
    two samples and the target (usage x 1.15) is lower than 20, which is skipped 4 times and
    applied at t = 240 s."""
    env = gym.make("InfAdapter-v0", trace=synthetic("constant", 400, rate=60.0), initial_cores=(0, 0, 20, 0, 0))
    agent = VPAAgent("resnet50", initial_cores=20, created_s=60, sample_period_s=60, first_decision_s=120)
    obs, info = env.reset(seed=0)
    agent.reset(info)
    cores, samples = [], []
    for _ in range(10):
        action = agent.act(obs, info)
        samples.append(float(agent.histogram.weights.sum()))
        obs, _, _, _, info = env.step(action)
        cores.append(info["cores_per_replica"][2])
    # Samples (weight 20 each, the allocated cores) at t = 60, 120, 180 and 240 s.
    assert [s > 0 for s in samples] == [False, False, True, True, True, True, True, True, True, True]
    assert samples[2] == pytest.approx(20.0, rel=1e-3) and samples[4] == pytest.approx(40.0, rel=1e-3)
    assert cores[:8] == [20] * 8 and cores[8] < 20


def test_busy_usage_keeps_vpa_at_its_allocation():
    """Under the ``busy`` signal a serving variant uses its whole allocation: P90 x 1.15 of 20 cores
    is clamped to 20, so VPA never shrinks."""
    env = gym.make("InfAdapter-v0", trace=synthetic("constant", 600, rate=60.0), initial_cores=(0, 0, 20, 0, 0))
    agent = VPAAgent("resnet50", initial_cores=20, usage="busy", created_s=60, first_decision_s=120)
    obs, info = env.reset(seed=0)
    agent.reset(info)
    for _ in range(20):
        obs, _, _, _, info = env.step(agent.act(obs, info))
        assert info["cores_per_replica"][2] == 20


@pytest.mark.parametrize("simulator", ["request", "fast"])
def test_quota_dispatcher_follows_the_planned_quotas(simulator):
    """ResNet18 and ResNet50 at 4 cores (90 and 36 req/s) with quotas 3 : 1 at 20 req/s. The
    original round robin sends, per cycle, ResNet18, ResNet50, ResNet18, ResNet18: the request-level
    split is exact (every 4th request from the 2nd on goes to ResNet50); the fast model splits the
    rate 3 : 1. The planned accuracy is the quota-weighted one."""
    env = quota_env(20.0, (4, 0, 4, 0, 0), simulator)
    env.reset(seed=3)
    env.unwrapped.set_quotas([3, 0, 1, 0, 5])  # a quota of a variant that does not run is skipped
    total = np.zeros(5)
    for _ in range(4):
        _, _, _, _, info = env.step(np.array([4, 0, 4, 0, 0]))
        total += info["served_in_slo_by_variant"]
        accuracy = env.unwrapped.profile.accuracy
        assert info["aa_planned"] == pytest.approx((3 * accuracy[0] + accuracy[2]) / 4)
    assert total.sum() == pytest.approx(2400, abs=1e-3) and total[[1, 3, 4]].sum() == 0
    if simulator == "request":
        assert total[2] == (2400 - 2) // 4 + 1
    else:  # in the SLO up to a tail probability below 1e-10
        assert total[2] == pytest.approx(600.0, abs=1e-3)


def test_quotas_that_name_no_serving_variant_fall_back_to_capacity_and_bad_quotas_are_refused():
    env = gym.make("InfAdapter-v0", trace=synthetic("constant", 60, rate=20.0), dispatcher="quota")
    env.reset(seed=0)
    env.unwrapped.set_quotas([0, 0, 0, 0, 7])  # ResNet152 does not run: round(th) of what does
    _, _, _, _, info = env.step(np.array([0, 0, 4, 0, 0]))
    assert info["served_in_slo_by_variant"][2] > 0
    with pytest.raises(ValueError, match="quotas must be 5 finite numbers >= 0"):
        env.unwrapped.set_quotas([1, 2, -1, 0, 0])
    with pytest.raises(ValueError, match="set_quotas needs dispatcher='quota'"):
        gym.make("InfAdapter-v0").unwrapped.set_quotas([1, 0, 0, 0, 0])


def test_forecaster_uses_ewm_until_ten_minutes_of_the_run_then_the_lstm():
    from infadapter_agents.forecast.lstm import load_model, predict

    agent = infadapter_agents.make("infadapter", history="run", stabilise=False)
    reset_info = {"settings": gym.make("InfAdapter-v0").unwrapped.settings.recorded(), "history_minutes": 10}
    agent.reset(reset_info)
    obs = np.zeros(layout.size, dtype=np.float32)
    peaks = np.array([30, 35, 40, 45, 50, 55, 60, 65, 50, 80], dtype=np.float32)
    obs[layout.MINUTE_PEAKS] = peaks
    # At t = 120 s the run has seen 2 minutes: EWM(span 10) of [50, 80] = (50 x 9/11 + 80) / (1 + 9/11) = 66.5;
    # at t = 90 s also 2 chunks (one partial).
    raw, rate = agent.forecast(obs, {"time_s": 120})
    assert raw == pytest.approx((50 * 9 / 11 + 80) / (1 + 9 / 11)) == pytest.approx(ewm_mean(np.array([50.0, 80.0])))
    assert rate == pytest.approx(1.1 * raw)
    assert agent.forecast(obs, {"time_s": 90})[0] == raw
    truncating = infadapter_agents.make("infadapter", history="run", stabilise=False, integer_rates=True)
    truncating.reset(reset_info)
    assert truncating.forecast(obs, {"time_s": 120}) == (raw, 73.0)  # int(1.1 x 66.5) = int(73.15)
    assert truncating.forecast(obs, {"time_s": 570})[0] == float(int(predict(load_model(), peaks)))
    # The original cuts its counter history into 60 s chunks, the newest partial: at t = 540 s
    # 9 chunks (EWM), at t = 570 s 10 chunks, and so the LSTM.
    assert agent.forecast(obs, {"time_s": 540})[0] == pytest.approx(ewm_mean(peaks[1:].astype(float)))
    assert agent.forecast(obs, {"time_s": 570})[0] == pytest.approx(predict(load_model(), peaks))
    # The default protocol counts the 10 minutes of trace before the episode: the LSTM at once.
    trace_agent = infadapter_agents.make("infadapter", stabilise=False)
    trace_agent.reset(reset_info)
    assert trace_agent.forecast(obs, {"time_s": 120})[0] == pytest.approx(predict(load_model(), peaks))
    # paper-2023's planners forecast with the original's Keras LSTM
    from infadapter_agents.forecast.lstm import KERAS_WEIGHTS_FILE
    from infadapter_env.leaderboard.protocol import paper_contenders

    assert {paper_contenders()[name].options["forecaster"] for name in ("infadapter", "ms+")} == {"lstm-keras"}
    keras_agent = infadapter_agents.make("infadapter", history="run", stabilise=False, forecaster="lstm-keras")
    keras_agent.reset(reset_info)
    keras = predict(load_model(str(KERAS_WEIGHTS_FILE)), peaks)
    assert keras_agent.forecast(obs, {"time_s": 570})[0] == pytest.approx(keras)
    assert keras != pytest.approx(predict(load_model(), peaks))


def test_play_passes_the_planned_quotas_and_replays_them():
    protocol = PROTOCOLS["paper-2023"]
    contender = paper_contenders()["infadapter"]
    kwargs = env_kwargs(protocol.scenarios["paper"], 0.05, "paper-2023", contender)
    agent = infadapter_agents.make(contender.agent, **contender.options)
    metrics, actions, quotas, settings = play(agent, kwargs, seed=1)
    set_quotas = [q for q in quotas if q is not None]
    assert quotas[:4] == [None] * 4 and set_quotas  # held, then planned
    assert actions[:4] == [[0, 0, 0, 0, 1, 0, 0, 0, 0, 20]] * 4
    assert all(sum(q) > 0 for q in set_quotas)
    assert 0 <= metrics["window_violation_pct"] <= 100
    replayed = episode_metrics(replay(settings | {"seed": 1}, actions, quotas), settings)
    assert replayed["slo_violation_pct"] == metrics["slo_violation_pct"]
    assert replayed["aa_planned"] == metrics["aa_planned"]
    without = episode_metrics(replay(settings | {"seed": 1}, actions), settings)
    assert without["aa_planned"] != metrics["aa_planned"]  # the quotas are part of the episode


def test_a_small_paper_sweep_reports_cis_headline_figure_and_validates(tmp_path, capsys):
    args = ["--protocol", "paper-2023", "--agents", "infadapter", "vpa-50/throttled", "vpa-50/busy"]
    args += ["--betas", "0.05", "--seeds", "0", "1", "--backend", "serial", "--out", str(tmp_path)]
    assert leaderboard.main(args) == 0
    with (tmp_path / "leaderboard.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and {r["protocol"] for r in rows} == {"paper-2023"}
    infadapter = [r for r in rows if r["agent"] == "infadapter"]
    assert all(r["quotas"] and json.loads(r["env_settings"])["arrivals"] == "loadgen" for r in infadapter)
    assert json.loads(next(r for r in rows if r["agent"] == "vpa-50/busy")["agent_options"])["usage"] == "busy"
    summary = (tmp_path / "summary.md").read_text()
    assert "IQM score [95 % CI]" in summary and "one scenario: only the seeds are resampled" in summary
    assert "### VPA usage signal `busy`" in summary and "### Verdicts" in summary
    assert (tmp_path / "paper_figure.png").stat().st_size > 10_000
    capsys.readouterr()
    assert validate.main([str(tmp_path / "leaderboard.csv")]) == 0
    assert "6 of 6 rows valid" in capsys.readouterr().out


def test_unknown_protocol_is_reported(tmp_path, capsys):
    assert leaderboard.main(["--protocol", "paper-2022", "--out", str(tmp_path)]) == 2
    assert "unknown protocol 'paper-2022'; valid protocols: default, validation, paper-2023" in capsys.readouterr().err


@pytest.mark.parametrize("simulator", ["request", "fast"])
def test_planned_quotas_route_once_the_new_servers_are_ready(simulator):
    """ResNet18 x 8 + ResNet152 x 12 cores at 40 req/s with quotas 60 : 40. The next decision
    resizes ResNet152 to 20 cores (load 8.52 s: ready at second 9) and drops ResNet18, planning
    quotas 0 : 100. As in the original adapter, which posts new quotas only after the new pods are
    ready, the old quotas route for 9 s (ResNet18 keeps serving until then: make before break):
    ResNet18 takes 60 % of 9 x 40 = 360 requests, 216, and nothing afterwards."""
    env = quota_env(40.0, (8, 0, 0, 0, 12), simulator)
    env.reset(seed=0)
    env.unwrapped.set_quotas([60, 0, 0, 0, 40])
    _, _, _, _, first = env.step(np.array([8, 0, 0, 0, 12]))  # nothing loads: the quotas route at once
    assert first["served_in_slo_by_variant"][0] == pytest.approx(0.6 * 1200, abs=1)
    env.unwrapped.set_quotas([0, 0, 0, 0, 100])
    _, _, _, _, second = env.step(np.array([0, 0, 0, 0, 20]))
    served_18 = second["served_in_slo_by_variant"][0]
    if simulator == "fast":
        assert served_18 == pytest.approx(216.0, abs=0.5)
    else:  # the round robin carries on from the first interval: 60 of every 100 requests, +-1 cycle
        assert 216 - 40 <= served_18 <= 216 + 40
    _, _, _, _, third = env.step(np.array([0, 0, 0, 0, 20]))
    assert third["served_in_slo_by_variant"][0] == 0 and third["aa_planned"] == pytest.approx(0.78312, abs=1e-4)


def test_a_submitted_agent_is_held_and_started_as_the_protocol_says():
    """evaluate() under paper-2023: the agent starts from ResNet152 x 20 cores, loaded, and the
    harness keeps that deployment for the first 2 minutes whatever the agent answers."""
    from infadapter_env.leaderboard import evaluate
    from infadapter_env.leaderboard.protocol import Protocol, Scenario

    class AlwaysResNet50:
        def reset(self, info):
            pass

        def act(self, observation, info):
            return np.array([0, 0, 1, 0, 0, 0, 0, 12, 0, 0])

    rows = evaluate(AlwaysResNet50, protocol="paper-2023", betas=[0.05], seeds=[0])
    actions = json.loads(rows.iloc[0]["actions"])
    assert actions[:4] == [[0, 0, 0, 0, 1, 0, 0, 0, 0, 20]] * 4  # held: t = 0, 30, 60, 90 s
    assert actions[4:] == [[0, 0, 1, 0, 0, 0, 0, 12, 0, 0]] * (len(actions) - 4)
    assert json.loads(rows.iloc[0]["env_settings"])["initial_cores"] == [0, 0, 0, 0, 20]
    # A protocol of one's own, passed as itself.
    mine = Protocol(
        "mine", {"calm": Scenario("calm", {"trace": "traces/README.md"})}, (0,), {"action_mode": "replicas"}, dict, "x"
    )
    with pytest.raises(ValueError, match="trace"):
        evaluate(AlwaysResNet50, protocol=mine, betas=[0.05])  # the README is not a trace: a clear error
    paper_only = {"paper": Scenario("paper", {"scenario": "paper"})}
    short = Protocol("short", paper_only, (0,), {"action_mode": "replicas"}, dict, "results/short")
    rows = evaluate(AlwaysResNet50, protocol=short, betas=[0.05])
    assert list(rows["protocol"]) == ["short"] and rows.iloc[0]["mean_cores"] == 12


def test_set_quotas_none_returns_to_capacity_and_copies_its_input():
    env = quota_env(40.0, (8, 0, 0, 0, 12))
    env.reset(seed=0)
    quotas = np.array([100.0, 0, 0, 0, 1])
    env.unwrapped.set_quotas(quotas)
    quotas[:] = [0, 0, 0, 0, 100]  # the caller's array is not the env's
    _, _, _, _, info = env.step(np.array([8, 0, 0, 0, 12]))
    assert info["served_in_slo_by_variant"][0] == pytest.approx(1200 * 100 / 101, abs=1)
    env.unwrapped.set_quotas(None)  # back to round(th): ResNet18 x 8 (th 56) and ResNet152 x 12 (th 47.8)
    _, _, _, _, info = env.step(np.array([8, 0, 0, 0, 12]))
    th = env.unwrapped.profile.per_replica_rps
    share = round(float(th[0, 8])) / (round(float(th[0, 8])) + round(float(th[4, 12])))
    assert info["served_in_slo_by_variant"][0] == pytest.approx(1200 * share, abs=1)
    env.reset(seed=0)
    assert quotas.tolist() == [0, 0, 0, 0, 100]  # reset leaves the caller's array alone


def test_agents_decode_with_the_envs_over_budget_rule():
    from infadapter_agents.base import PlanningView

    for rule, expected in (("reject", [0, 0, 0, 0, 0]), ("scale", [6, 6, 6, 0, 0])):
        env = gym.make("InfAdapter-v0", over_budget=rule)
        _, info = env.reset(seed=0)
        settings = PlanningView.from_info(info)
        _, cores, _, _ = settings.encoder().decode_batch(
            np.array([[10, 10, 10, 0, 0]]), np.zeros((1, 5)), np.zeros((1, 5))
        )
        assert cores[0].tolist() == expected


def test_fractional_quotas_are_recorded_as_set_and_replay_exactly():
    from infadapter_env.leaderboard.protocol import Scenario

    class FractionalQuotas:
        def reset(self, info):
            pass

        def act(self, observation, info):
            return np.array([1, 0, 0, 0, 1, 8, 0, 0, 0, 12])

        def decision_info(self):
            return {"quotas": [2.7, 0, 0, 0, 1.6]}

    kwargs = env_kwargs(Scenario("paper", {"scenario": "paper"}), 0.05, "paper-2023", None)
    metrics, actions, quotas, settings = play(FractionalQuotas(), kwargs, seed=0, hold_s=120)
    assert quotas[:4] == [None] * 4 and quotas[4] == [2.7, 0, 0, 0, 1.6]  # nothing set during the hold
    replayed = episode_metrics(replay(settings | {"seed": 0}, actions, quotas), settings)
    assert replayed["objective"] == metrics["objective"] and replayed["aa_planned"] == metrics["aa_planned"]


def test_a_bare_vpa_name_is_resolved_to_the_protocols_contender_or_refused(tmp_path, capsys):
    """``vpa-50`` under paper-2023 would play the registry's default VPA and read as the protocol's."""
    args = ["--protocol", "paper-2023", "--agents", "vpa-50", "--betas", "0.05", "--seeds", "0"]
    assert leaderboard.main([*args, "--backend", "serial", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "agent 'vpa-50': protocol paper-2023 plays it only with its own settings, as " in err
    assert "as vpa-50/throttled, vpa-50/busy: name one of these" in err
    assert "infadapter, ms+, vpa-18/throttled" in err  # every label of the protocol
    assert not (tmp_path / "leaderboard.csv").exists()
    # one contender for the name: the name is that contender, and the sweep says so
    paper = PROTOCOLS["paper-2023"]
    only_busy = dataclasses.replace(
        paper, contenders=lambda: {k: c for k, c in paper_contenders().items() if not k.endswith("/throttled")}
    )
    said: list[str] = []
    assert resolve_agents(only_busy, ["vpa-50", "infadapter"], log=said.append) == ["vpa-50/busy", "infadapter"]
    assert said == ["agent 'vpa-50': protocol paper-2023 plays it as its contender 'vpa-50/busy'"]


def test_the_headline_reads_only_the_protocols_own_contenders(tmp_path):
    """A row of an agent played outside the contender list never stands for the protocol's VPA."""
    rows = []
    for seed in (0, 1):
        rows.append(aggregate_row("infadapter", 0.05, "paper", seed, slo_violation_pct=3.0, mean_cores=10.0))
        rows.append(
            aggregate_row(
                "vpa-50/throttled", 0.05, "paper", seed, slo_violation_pct=30.0, mean_cores=12.0,
                agent_options=json.dumps({"usage": "throttled"}),
            )
        )  # fmt: skip
        rows.append(aggregate_row("vpa-50", 0.05, "paper", seed, slo_violation_pct=90.0, mean_cores=8.0))
    text = write_summary(tmp_path, to_frame(rows), "test", PROTOCOLS["paper-2023"], reps=300)
    headline = text[text.index("## The paper's headline") :]
    assert "Left out: `vpa-50`, not among protocol `paper-2023`'s contenders" in headline
    assert "| 0.05 | vpa-50/throttled | 30.00 | 3.00 | 90.0 |" in headline
    assert "| vpa-50 |" not in headline and "90.00" not in headline
