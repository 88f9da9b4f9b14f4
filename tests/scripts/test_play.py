"""``infadapter play``: one episode of one or more agents, interval by interval, as CSV and a figure."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from infadapter_env.core.objective import PAPER_ALPHA, PAPER_GAMMA
from infadapter_env.leaderboard.episode import Task, run_task
from infadapter_env.leaderboard.timeline import interval_columns
from infadapter_env.world.traces import scenario
from infadapter_scripts import cli, play

VARIANTS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
PAPER_INTERVALS = 1260 // 30


@pytest.fixture(scope="module")
def one_agent(tmp_path_factory):
    out = tmp_path_factory.mktemp("play")
    argv = ["--agent", "static-over", "--scenario", "paper", "--beta", "0.05"]
    assert play.main([*argv, "--csv", str(out / "one.csv"), "--plot", str(out / "one.png")]) == 0
    return out


def test_one_row_per_interval_with_every_column(one_agent):
    rows = pd.read_csv(one_agent / "one.csv", keep_default_na=False)
    assert list(rows.columns) == interval_columns(VARIANTS)
    assert len(rows) == PAPER_INTERVALS
    assert rows["step"].tolist() == list(range(1, PAPER_INTERVALS + 1))
    assert rows["start_s"].tolist() == [30 * k for k in range(PAPER_INTERVALS)]
    assert set(rows["agent"]) == {"static-over"}
    assert (one_agent / "one.png").stat().st_size > 10_000


def test_rows_agree_with_the_trace_and_the_leaderboard(one_agent):
    rows = pd.read_csv(one_agent / "one.csv", keep_default_na=False)
    assert rows["arrivals"].sum() == scenario("paper").arrivals.sum() == 121_697
    assert rows["cores"].tolist() == rows[[f"cores_{v}" for v in VARIANTS]].sum(axis=1).tolist()
    capacity = rows[[f"capacity_rps_{v}" for v in VARIANTS]].sum(axis=1)
    assert rows["capacity_rps"].tolist() == pytest.approx(capacity.tolist())
    reward = PAPER_ALPHA * rows["aa_effective"] - 0.05 * rows["rc"] - PAPER_GAMMA * rows["lc"]
    assert rows["reward"].tolist() == pytest.approx(reward.tolist(), abs=1e-12)
    violated = 100 * rows["violated"] / rows["arrivals"]
    assert rows["slo_violation_pct"].tolist() == pytest.approx(violated.tolist(), abs=1e-9)
    # The same episode as the leaderboard's row for this contender, scenario, beta and seed.
    board = run_task(Task("validation", "static-over", 0.05, "paper", 0))[0]
    assert math.isclose(rows["reward"].mean(), board["objective"], rel_tol=1e-9)
    assert math.isclose(rows["cores"].mean(), board["mean_cores"], rel_tol=1e-9)


@pytest.mark.parametrize(
    "agents", [["--agent", "static-over", "--agent", "static-under"], ["--agent", "static-over,static-under"]]
)
def test_two_agents_in_one_file_and_one_figure(tmp_path, agents):
    argv = [*agents, "--episode-length-s", "300", "--window-start-s", "0"]
    assert play.main([*argv, "--csv", str(tmp_path / "two.csv"), "--plot", str(tmp_path / "two.png")]) == 0
    rows = pd.read_csv(tmp_path / "two.csv", keep_default_na=False)
    assert rows["agent"].tolist() == ["static-over"] * 10 + ["static-under"] * 10
    over, under = (rows[rows["agent"] == a].reset_index() for a in ("static-over", "static-under"))
    assert over["arrivals"].tolist() == under["arrivals"].tolist()  # one episode, two agents
    assert over["arrivals"].sum() == scenario("paper").arrivals[:300].sum()
    assert over["cores"].mean() > under["cores"].mean()
    assert (tmp_path / "two.png").stat().st_size > 10_000


def test_a_trace_file_and_the_request_level_simulator(tmp_path):
    trace = tmp_path / "load.csv"
    trace.write_text("second,requests\n" + "".join(f"{s},{40 + s % 7}\n" for s in range(120)))
    argv = ["--agent", "ms+", "--trace", str(trace), "--trace-column", "requests", "--simulator", "request"]
    assert play.main([*argv, "--csv", str(tmp_path / "rows.csv")]) == 0
    rows = pd.read_csv(tmp_path / "rows.csv", keep_default_na=False)
    assert len(rows) == 4 and rows["arrivals"].sum() == sum(40 + s % 7 for s in range(120))
    per_minute = tmp_path / "per_minute.txt"
    per_minute.write_text("1800\n2400\n")
    argv = ["--agent", "ms+", "--trace", str(per_minute), "--trace-resolution-s", "60"]
    assert play.main([*argv, "--csv", str(tmp_path / "minutes.csv")]) == 0
    rows = pd.read_csv(tmp_path / "minutes.csv", keep_default_na=False)
    assert rows["arrivals"].tolist() == [900, 900, 1200, 1200]


def test_a_contender_of_the_paper_protocol_plays_as_in_its_leaderboard(tmp_path):
    argv = ["--protocol", "paper-2023", "--agent", "vpa-50/throttled", "--episode-length-s", "300"]
    assert play.main([*argv, "--window-start-s", "0", "--csv", str(tmp_path / "vpa.csv")]) == 0
    rows = pd.read_csv(tmp_path / "vpa.csv", keep_default_na=False)
    # It starts as ResNet50 at 20 cores and holds them for the protocol's first 2 minutes.
    assert rows["cores_resnet50"].tolist()[:4] == [20] * 4 and rows["cores"].tolist()[:4] == [20] * 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agent", "nope"], r"unknown agent 'nope'; valid agents: infadapter, ms\+"),
        (["--agent", "ms+,nope"], r"unknown agent 'nope'"),
        ([], r"give at least one --agent"),
        (["--agent", "ms+", "--scenario", "day3"], r"unknown scenario 'day3'; valid scenarios: test1, test2"),
        (["--agent", "ms+", "--protocol", "mine"], r"unknown protocol 'mine'"),
        (["--agent", "ms+", "--simulator", "slow"], r"simulator must be one of 'fast', 'request'"),
        (["--agent", "ms+", "--trace", "x.txt", "--scenario", "paper"], r"--scenario or --trace, not both"),
        (["--agent", "ms+", "--trace", "missing.txt"], r"cannot read trace file missing.txt"),
        (["--agent", "ms+", "--trace-resolution-s", "60"], r"--trace-resolution-s need --trace"),
    ],
)
def test_bad_input_is_one_line_not_a_traceback(argv, message, capsys):
    assert play.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("infadapter play: error: ") and err.count("\n") == 1
    assert re.search(message, err)


def test_repeated_agent_flags_are_joined():
    joined = play.join_repeated(["--agent", "a", "--beta", "1", "--agent", "b", "c", "--agent=d"], "--agent")
    assert joined == ["--agent", "a", "b", "c", "d", "--beta", "1"]
    assert play.join_repeated(["--beta", "1"], "--agent") == ["--beta", "1"]


def test_the_command_is_registered(capsys):
    assert "play" in cli.COMMANDS
    assert cli.main(["play", "--agent", "nope"]) == 2
    assert "unknown agent 'nope'" in capsys.readouterr().err
