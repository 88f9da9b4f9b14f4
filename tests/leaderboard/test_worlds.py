"""Bring your own world: a capacity profile and a variants file of one's own, calibrated by
``infadapter calibrate``; spaces, observation, solver and agents follow, and bad files are named."""

from __future__ import annotations

import csv
import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import infadapter_agents
import infadapter_env  # noqa: F401  (registers InfAdapter-v0)
from infadapter_env.world.profiles import UnsupportedWorld, load_profile, load_world
from infadapter_env.world.shipped_data import data_file
from infadapter_scripts.cli import main as cli

# Three variants of the shipped profile under new names, 1..4 cores, two SLOs.
RENAMED = {"18": "tiny-net", "50": "mid-net", "152": "big-net"}
VARIANTS_CSV = (
    "variant,arch,top1_accuracy,load_time_s,memory_gb\n"
    "tiny,tiny-net,0.70,3.0,0.5\n"
    "mid,mid-net,0.76,5.0,1.0\n"
    "big,big-net,0.78,9.0,2.0\n"
)


def write_profile(folder: Path, max_cores: int = 4, slos: tuple[str, ...] = ("750", "1000")) -> Path:
    with data_file("profiles", "capacity_result_Feb_21.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    path = folder / "capacity.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            if row["ARCH"] in RENAMED and int(row["CPU"]) <= max_cores and row["SLA"] in slos:
                writer.writerow(row | {"ARCH": RENAMED[row["ARCH"]]})
    (folder / "variants.csv").write_text(VARIANTS_CSV)
    return path


@pytest.fixture(scope="module")
def world_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("three-variants")
    profile = write_profile(folder)
    quick = ["--seeds", "2", "--check-seeds", "3", "--table-requests", "3000"]
    assert cli(["calibrate", "--profile", str(profile), *quick]) == 0
    return folder


def test_calibrate_writes_the_simulators_files_beside_the_profile(world_folder):
    for name in ("service_model.csv", "latency_quantiles.npz", "calibration_report.md"):
        assert (world_folder / name).is_file(), name
    with (world_folder / "service_model.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["variant"], int(r["cores"])) for r in rows} == {
        (v, c) for v in ("tiny", "mid", "big") for c in range(1, 5)
    }
    report = (world_folder / "calibration_report.md").read_text()
    assert "| tiny | 1 | 750 |" in report


@pytest.mark.parametrize("simulator", ["fast", "request"])
def test_spaces_observation_and_info_follow_the_world(world_folder, simulator):
    env = gym.make("InfAdapter-v0", profile=str(world_folder / "capacity.csv"), simulator=simulator, budget_cores=8)
    obs, info = env.reset(seed=0)
    layout = env.unwrapped.layout
    assert info["variants"] == ["tiny", "mid", "big"]  # ordered by accuracy
    assert env.action_space.nvec.tolist() == [5, 5, 5]  # cores 0..4: the profile's range, not 20
    assert obs.shape == env.observation_space.shape == (layout.size,) == (10 + 2 + 6 * 3 + 4,)
    assert env.observation_space.high[layout.LOADING_LEFT].tolist() == [9.0] * 3
    obs, reward, _, _, info = env.step(np.array([0, 4, 2]))
    assert info["cores_per_replica"] == [0, 4, 2] and np.isfinite(reward)
    assert obs[layout.CORES].tolist() == [0, 4, 2]
    assert len(info["latency_p99_ms_by_variant"]) == 3
    with pytest.raises(ValueError):
        env.step(np.array([0, 0, 4, 0, 2]))  # a five-variant action in a three-variant world


def test_the_world_is_recorded_and_replayable(world_folder):
    env = gym.make("InfAdapter-v0", profile=str(world_folder / "capacity.csv"))
    _, info = env.reset(seed=0)
    settings = info["settings"]
    assert settings["profile"] == str((world_folder / "capacity.csv").resolve())
    assert settings["variants"] is None  # variants.csv beside the profile, found again on replay
    assert load_world(settings["profile"], settings["variants"]).names == ("tiny", "mid", "big")


@pytest.mark.parametrize("name", ["infadapter", "ms+", "oracle", "static-over"])
def test_planning_agents_plan_over_the_worlds_variants(world_folder, name):
    env = gym.make("InfAdapter-v0", profile=str(world_folder / "capacity.csv"), budget_cores=8, episode_length_s=300)
    agent = infadapter_agents.make(name)
    obs, info = env.reset(seed=0)
    agent.reset(info)
    deployed = []
    truncated = False
    while not truncated:
        obs, _, _, truncated, info = env.step(agent.act(obs, info))
        deployed.append(info["cores_per_replica"])
        assert sum(info["cores_per_replica"]) <= 8 and len(info["cores_per_replica"]) == 3
    assert any(sum(c) > 0 for c in deployed)


def test_agents_that_cannot_handle_the_world_refuse_with_a_message(world_folder):
    env = gym.make("InfAdapter-v0", profile=str(world_folder / "capacity.csv"), action_mode="replicas")
    _, info = env.reset(seed=0)
    with pytest.raises(ValueError, match=r"unknown variant '?18'? in this world .*tiny \(tiny-net\), mid"):
        infadapter_agents.make("vpa-18").reset(info)
    infadapter_agents.make("hpa", variant="mid").reset(info)  # a variant of this world by name
    with pytest.raises(ValueError, match=r"trained on variants \['resnet18'.*cannot act on variants \['tiny'"):
        infadapter_agents.make("ppo").reset(info)


def test_learned_agents_warn_outside_their_training_settings():
    _, info = gym.make("InfAdapter-v0", budget_cores=10).reset(seed=0)
    with pytest.warns(UserWarning, match=r"budget_cores=10 \(trained: 20\)"):
        infadapter_agents.make("ppo").reset(info)
    _, info = gym.make("InfAdapter-v0", beta=0.2).reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the objective's weights are not a training setting
        infadapter_agents.make("ppo").reset(info)


def test_a_variants_file_picks_a_subset_of_the_shipped_world(tmp_path):
    subset = tmp_path / "two.csv"
    subset.write_text("variant,arch,top1_accuracy,load_time_s\nresnet152,152,0.78312,8.52\nresnet18,18,0.69758,6.44\n")
    env = gym.make("InfAdapter-v0", variants=str(subset), simulator="request")
    _, info = env.reset(seed=0)
    assert info["variants"] == ["resnet18", "resnet152"]
    shipped = load_profile(750, "measured")
    two = env.unwrapped.profile
    np.testing.assert_array_equal(two.per_replica_rps, shipped.per_replica_rps[[0, 4]])
    _, _, _, _, info = env.step(np.array([8, 12]))
    assert info["cores_per_replica"] == [8, 12]


def test_the_solver_cli_reads_a_world(world_folder, capsys):
    profile = str(world_folder / "capacity.csv")
    assert cli(["solve", "--rate", "20", "--profile", profile, "--budget-cores", "8", "--previous", "big:4"]) == 0
    assert "deployment:" in capsys.readouterr().out
    assert cli(["solve", "--rate", "20", "--profile", profile, "--previous", "resnet152:4"]) == 2
    assert "not VARIANT:CORES (VARIANT one of tiny (tiny-net)" in capsys.readouterr().err


def test_slo_must_be_a_profiled_one(world_folder):
    with pytest.raises(ValueError, match=r"slo_ms must be one of 750, 1000; got 500"):
        gym.make("InfAdapter-v0", profile=str(world_folder / "capacity.csv"), slo_ms=500)


# ------------------------------------------------------------------ bad files, each named


def test_an_uncalibrated_profile_names_the_command_that_calibrates_it(tmp_path):
    profile = write_profile(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=r"no service_model.csv beside profile .*infadapter calibrate --profile"
    ):
        gym.make("InfAdapter-v0", profile=str(profile))


def test_a_changed_profile_needs_a_new_calibration(world_folder, tmp_path):
    for name in ("capacity.csv", "variants.csv", "service_model.csv", "latency_quantiles.npz"):
        shutil.copy(world_folder / name, tmp_path / name)
    with (tmp_path / "capacity.csv").open("a") as handle:
        handle.write("1,cpu,1,1G,unused-net,1,1,1000000,1,1,750,100,10,12,2023-02-21T00:00:00\n")
    with pytest.raises(ValueError, match=r"calibrated to another profile .*infadapter calibrate --profile"):
        gym.make("InfAdapter-v0", profile=str(tmp_path / "capacity.csv"))


def _profile_with(tmp_path: Path, edit) -> Path:
    profile = write_profile(tmp_path)
    lines = profile.read_text().splitlines()
    profile.write_text("\n".join(edit(lines)) + "\n")
    return profile


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: [lines[0], *lines[2:]], r"missing 1: tiny-net/SLA 750/1 CPU"),
        (lambda lines: [*lines, lines[1]], r"line 26: ARCH tiny-net at SLA 750 with 1 CPU repeats line 2"),
        (lambda lines: [lines[0], lines[1].replace(",19,22,", ",many,22,"), *lines[2:]], r"line 2, field capacity"),
        (lambda lines: [lines[0].replace("capacity", "cap"), *lines[1:]], r"needs the column\(s\) \['capacity'\]"),
        (lambda lines: [lines[0], lines[1] + ",extra", *lines[2:]], r"line 2: 15 fields expected"),
    ],
)
def test_bad_profile_rows_are_named(tmp_path, edit, message):
    profile = _profile_with(tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        load_world(profile)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (VARIANTS_CSV.replace("0.76,", "76,"), r"variants.csv, line 3, field top1_accuracy: a number in \[0, 1\]"),
        (VARIANTS_CSV + "tiny,other-net,0.5,1.0,1.0\n", r"variant name \['tiny'\] given more than once"),
        (VARIANTS_CSV.replace("load_time_s", "load"), r"needs the column\(s\) \['load_time_s'\]"),
        (VARIANTS_CSV.replace("big-net", "huge-net"), r"no rows for variant ARCH \['huge-net'\]"),
    ],
)
def test_bad_variants_files_are_named(tmp_path, text, message):
    profile = write_profile(tmp_path)
    (tmp_path / "variants.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_world(profile)


def test_linear_fit_needs_two_fit_points(tmp_path):
    profile = write_profile(tmp_path, max_cores=1)
    world = load_world(profile)
    assert world.max_cores == 1
    with pytest.raises(ValueError, match=r"has only cores 1..1: use capacity_model='measured'"):
        load_profile(750, "linear_fit", 1, world=world)


def test_a_leaderboard_in_a_world_of_ones_own_skips_the_agents_that_cannot_play_there(world_folder, tmp_path):
    from infadapter_env.leaderboard.sweep import SweepError, run_sweep

    env = {"profile": str(world_folder / "capacity.csv"), "budget_cores": 8}
    lines: list[str] = []
    rows = run_sweep("default", [], ["test1"], [0.05], [0], tmp_path, "serial", env=env, log=lines.append)
    skipped = {line.split(":")[0].removeprefix("skipped ") for line in lines if line.startswith("skipped ")}
    assert {"vpa-18/throttled", "vpa-152/busy", "resnet18@20", "hpa", "ppo", "a2c"} <= skipped
    assert {"infadapter", "ms+", "oracle", "static-over"} <= set(rows["agent"])
    assert not skipped & set(rows["agent"])
    with pytest.raises(SweepError, match=r"agent 'vpa-18/busy' cannot play in this world: unknown variant"):
        run_sweep("default", ["vpa-18/busy"], ["test1"], [0.05], [0], tmp_path / "asked", "serial", env=env)


def test_play_runs_in_a_world_of_ones_own(world_folder, tmp_path, capsys):
    profile = str(world_folder / "capacity.csv")
    argv = [
        "play",
        "--agent",
        "infadapter,static-over",
        "--profile",
        profile,
        "--budget-cores",
        "8",
        "--slo-ms",
        "1000",
    ]
    argv += [
        "--simulator",
        "fast",
        "--episode-length-s",
        "300",
        "--window-start-s",
        "0",
        "--csv",
        str(tmp_path / "p.csv"),
    ]
    assert cli(argv) == 0
    header = (tmp_path / "p.csv").read_text().splitlines()[0].split(",")
    assert {"cores_tiny", "cores_mid", "cores_big"} <= set(header) and "cores_resnet18" not in header
    assert cli(["play", "--agent", "vpa-18/busy", "--profile", profile]) == 2
    assert "unknown variant" in capsys.readouterr().err


def test_a_world_of_one_variant(world_folder, tmp_path):
    (tmp_path / "one.csv").write_text("variant,arch,top1_accuracy,load_time_s\nbig,big-net,0.78,9.0\n")
    kwargs = {"profile": str(world_folder / "capacity.csv"), "variants": str(tmp_path / "one.csv")}
    env = gym.make("InfAdapter-v0", budget_cores=8, episode_length_s=300, **kwargs)
    layout = env.unwrapped.layout
    assert isinstance(layout.CORES, slice) and layout.CORES.stop - layout.CORES.start == 1
    for name in ("infadapter", "oracle", "static-over"):
        agent = infadapter_agents.make(name)
        obs, info = env.reset(seed=0)
        agent.reset(info)
        obs, _, _, _, info = env.step(agent.act(obs, info))
        assert len(info["cores_per_replica"]) == 1 and 0 < info["cores_per_replica"][0] <= 4


def test_play_takes_agents_of_ones_own(world_folder, tmp_path, monkeypatch, capsys, isolated_registry):
    (tmp_path / "mine.py").write_text(
        "import infadapter_agents\ndef hpa_mid(**options):\n    return infadapter_agents.make('hpa', variant='mid')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["play", "--agent", "mine:hpa_mid", "--profile", str(world_folder / "capacity.csv"), "--simulator", "fast"]
    assert cli([*argv, "--episode-length-s", "300", "--window-start-s", "0"]) == 0
    assert capsys.readouterr().out.startswith("mine:hpa_mid: objective")


def test_a_policy_trains_in_a_world_of_ones_own_and_plays_only_there(world_folder, tmp_path):
    from infadapter_agents.learned.agent import LearnedAgent
    from infadapter_scripts import train_rl

    out = tmp_path / "ppo"
    argv = ["--algo", "ppo", "--total-timesteps", "256", "--num-envs", "4", "--episode-length-s", "300"]
    argv += ["--profile", str(world_folder / "capacity.csv"), "--out", str(out), "--log-dir", str(tmp_path / "logs")]
    assert train_rl.main(argv) == 0  # its evaluation on training days runs in the world too
    agent = LearnedAgent(out)
    env = gym.make("InfAdapter-v0", profile=str(world_folder / "capacity.csv"))
    obs, info = env.reset(seed=0)
    agent.reset(info)
    assert env.action_space.contains(np.asarray(agent.act(obs, info)))
    with pytest.raises(UnsupportedWorld, match="trained on variants \\['tiny', 'mid', 'big'\\]"):
        agent.reset(gym.make("InfAdapter-v0").reset(seed=0)[1])


def test_a_row_no_tested_rate_met_calibrates_and_is_reported(tmp_path):
    """The profiler writes capacity 0 and no P99 where no tested rate met the SLA (a slow model at a
    tight SLA); calibration fits the server to the other rows and reports that row as unmeasured."""
    profile = write_profile(tmp_path, max_cores=1, slos=("750", "1000"))
    rows = list(csv.DictReader(profile.open()))
    rows[0] |= {"capacity": "0", "p99_latency": ""}
    with profile.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    quick = ["--seeds", "2", "--check-seeds", "3", "--table-requests", "3000"]
    assert cli(["calibrate", "--profile", str(profile), *quick]) == 0
    report = (tmp_path / "calibration_report.md").read_text()
    name = {"tiny-net": "tiny", "mid-net": "mid", "big-net": "big"}[rows[0]["ARCH"]]
    assert f"| {name} | 1 | {rows[0]['SLA']} | 0 | - | - | - |" in report


def test_the_calibration_report_says_why_a_row_or_a_saturation_is_missed():
    from infadapter_env.sim.calibration import CandidateGrid

    # Three candidates (columns) at three measured points (rows), their P99 errors:
    points = [(10.0, 400.0), (20.0, 300.0), (30.0, 700.0)]  # the middle point falls as the rate rises
    mean_s, cv = np.array([0.1, 0.12, 0.14]), np.zeros(3)
    saturation_error = np.array([0.3, 0.2, 0.0])
    errors = np.array([[0.0, 0.05, 0.5], [0.5, 0.9, 0.1], [-0.3, 0.1, -0.4]])
    grid = CandidateGrid(points, mean_s, cv, saturation_error, errors)
    chosen = grid.best()
    assert chosen == 1  # matches points 0 and 2
    assert grid.why_p99_missed(1, chosen).text == "non-monotone: 400 ms at 10 req/s"  # no candidate matches both
    assert grid.why_p99_missed(0, chosen).text == "within 15 % in the fit's runs"
    assert grid.why_saturation_missed(chosen).text == "within 5 % it keeps at most 1 of 3 P99 points, the fit 2"
    assert grid.why_saturation_missed(2).text.startswith("its workers / mean service time is within 5 %")
    monotone = [(10.0, 300.0), (20.0, 400.0), (30.0, 700.0)]
    trade_off = CandidateGrid(monotone, mean_s, cv, saturation_error, errors)
    assert trade_off.why_p99_missed(1, chosen).text == (
        "a server that matches it misses 2 of the other 2 points (the chosen one misses 0)"
    )
    # Out of order, but a candidate matches both: the reason is the trade-off, not the order.
    dip = CandidateGrid(points, mean_s, cv, saturation_error, errors + np.array([[0.0], [0.0], [0.0]]))
    dip.p99_error[0, 2] = 0.0
    assert dip.why_p99_missed(1, chosen).text.startswith("a server that matches it")
    # A candidate that matches it matches as many points in all: the next criteria decided.
    tie = CandidateGrid(
        monotone, mean_s, cv, np.array([0.3, 0.2, 0.25]), np.array([[0.0, 0.0, 0.0], [0.5, 0.9, 0.1], [0.9, 0.1, 0.95]])
    )
    assert tie.best() == 1  # 2 points each for candidates 1 and 2, both outside 5 %; 1 has the smaller P99 error
    assert tie.why_p99_missed(1, 1).text == (
        "a server that matches it matches no more points in all (2 of 3); it loses on saturation or total P99 error"
    )
    # Within 5 % as many points but a far larger error at the one it misses: not "fewer points".
    even_errors = np.array([[0.9, 0.0, 0.0], [0.9, 0.0, 0.0], [0.9, 0.5, 6.0]])
    even = CandidateGrid(monotone, mean_s, cv, np.array([0.3, 0.2, 0.0]), even_errors)
    assert even.best() == 1
    assert (
        even.why_saturation_missed(1).text
        == "within 5 % it keeps as many P99 points (2 of 3) with a larger total P99 error"
    )
    unreachable = CandidateGrid(points, mean_s, cv, saturation_error, errors + np.array([[0.0], [0.5], [0.0]]))
    assert unreachable.why_p99_missed(1, chosen).text == "no candidate server is this fast at 20 req/s"


def test_the_common_speed_splits_the_misses_evenly_and_the_band_is_where_the_median_stays_within_tolerance():
    from infadapter_env.sim.calibration import Scan, SpeedPoint, common_speed

    def point(speed, error, within, fast, slow):
        return SpeedPoint(speed, error, within, fast, slow, 0, 100, 0.0)

    scan = [
        point(0.9, 0.60, 10, 0, 90),
        point(0.95, 0.10, 60, 10, 30),  # signed median over 5 %: not balanced
        point(0.98, 0.01, 80, 9, 11),
        point(1.0, -0.02, 85, 12, 3),  # the most within, but 80 % of its misses too fast
        point(1.05, -0.35, 30, 70, 0),
    ]
    assert common_speed(scan) == 0.98
    low, high = Scan(scan, 0.98).band()
    # the signed median crosses +15 % between 0.95 (+10 %) and 0.9 (+60 %), -15 % between 1.0 and 1.05
    assert low == pytest.approx((0.95 - 0.05 * 0.05 / 0.5) / 0.98)
    assert high == pytest.approx((1.0 + 0.05 * 0.13 / 0.33) / 0.98)
    assert Scan([point(1.0, 0.5, 0, 0, 100)], 1.0).band() == (1.0, 1.0)  # no speed within tolerance: no band
