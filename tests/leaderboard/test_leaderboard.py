"""The leaderboard harness: rows, validation, resume, backends, and bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infadapter_env.core.scalar_env import SIM_VERSION
from infadapter_env.leaderboard.episode import COLUMNS, TIMING_COLUMNS, Task, row_digest
from infadapter_env.leaderboard.protocol import (
    EPISODE_S,
    TEST_WINDOW_STARTS,
    TEST_WINDOW_STRATA,
    VALIDATION_WINDOW_STARTS,
    get_protocol,
    sealed_test_window_starts,
    validation_window_starts,
)
from infadapter_env.world.traces import PAPER_SLICE_S, valid_window_starts, window_means
from infadapter_env.world.traces import scenario as load_scenario
from infadapter_scripts import leaderboard, validate

TINY = [
    "--agents",
    "static-under",
    "ms+",
    "--seeds",
    "0",
    "--scenarios",
    "test1",
    "--betas",
    "0.02,0.1",
    "--no-figures",
]


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def comparable(rows: list[dict[str, str]]) -> list[tuple]:
    """Rows without the measured timing columns, in key order."""
    keep = [c for c in COLUMNS if c not in TIMING_COLUMNS]
    return sorted(tuple(row[c] for c in keep) for row in rows)


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    assert leaderboard.main([*TINY, "--backend", "serial", "--out", str(out)]) == 0
    return out


def test_the_windows_are_the_ones_the_recorded_seeds_draw():
    assert validation_window_starts() == VALIDATION_WINDOW_STARTS
    assert sealed_test_window_starts() == TEST_WINDOW_STARTS


def test_the_sealed_test_split_is_disjoint_stratified_and_holds_the_busiest_windows():
    trace = load_scenario("test")
    windows = sorted([*TEST_WINDOW_STARTS, *VALIDATION_WINDOW_STARTS, PAPER_SLICE_S[0] - trace.start_s])
    assert len(TEST_WINDOW_STARTS) >= 40 and min(np.diff(windows)) >= EPISODE_S  # no two windows overlap
    every = valid_window_starts(trace, EPISODE_S)
    busiest = np.percentile(window_means(trace, every, EPISODE_S), 95)
    sealed = window_means(trace, np.array(TEST_WINDOW_STARTS), EPISODE_S)
    assert (sealed >= busiest).sum() == TEST_WINDOW_STRATA[-1][2] == 5
    assert set(get_protocol("default").scenarios) == {f"test{k}" for k in range(1, 41)}
    assert set(get_protocol("validation").scenarios) == {"paper"} | {f"val{k}" for k in range(1, 31)}


def test_tiny_sweep_writes_every_column_and_validates(tiny_sweep, capsys):
    rows = read(tiny_sweep / "leaderboard.csv")
    assert len(rows) == 4 and list(rows[0]) == list(COLUMNS)
    assert {(r["agent"], r["beta"]) for r in rows} == {(a, b) for a in ("static-under", "ms+") for b in ("0.02", "0.1")}
    assert all(r["steps"] == "42" and r["git_commit"] and r["actions"].startswith("[[") for r in rows)
    summary = (tiny_sweep / "summary.md").read_text()
    assert summary.count("| 1 |") == 2
    assert "Command: `infadapter leaderboard --agents static-under ms+ --seeds 0 --scenarios test1" in summary
    assert validate.main([str(tiny_sweep / "leaderboard.csv")]) == 0
    assert "4 of 4 rows valid" in capsys.readouterr().out


def tamper_actions(text: str) -> str:
    actions = json.loads(text)
    actions[5] = [0, 0, 0, 0, 1, 0, 0, 0, 0, 2]  # ResNet152 on 2 cores at step 6: no agent here does that
    return json.dumps(actions)


@pytest.mark.parametrize(("column", "change"), [("objective", lambda _: "0.9"), ("actions", tamper_actions)])
def test_a_tampered_row_is_rejected(tiny_sweep, tmp_path, column, change, capsys):
    rows = read(tiny_sweep / "leaderboard.csv")
    rows[1][column] = change(rows[1][column])
    path = write(tmp_path / "tampered.csv", rows)
    assert validate.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "line 3" in out and "checksum does not match" in out and "3 of 4 rows valid" in out


@pytest.mark.slow
def test_a_killed_sweep_resumes_to_exactly_the_full_set(tmp_path):
    sweep = ["--agents", "static-under", "ms+", "--seeds", "0", "--scenarios", "test1", "test2", "--no-figures"]
    sweep += ["--betas", "0.01,0.02,0.05,0.1,0.2,0.5", "--backend", "serial"]  # 24 rows
    reference = tmp_path / "reference"
    assert leaderboard.main([*sweep, "--out", str(reference)]) == 0
    out = tmp_path / "resume"
    command = [sys.executable, "-m", "infadapter_scripts.cli", "leaderboard", *sweep, "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    path = out / "leaderboard.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not path.exists() or len(path.read_text().splitlines()) < 2):
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(path.read_text().splitlines()) - 1
    assert 1 <= finished < 24
    with path.open("a") as handle:  # a row torn in the middle of its write
        handle.write("ms+,0.1,test1,0,0.7,")
    assert leaderboard.main([*sweep, "--out", str(out)]) == 0
    rows = read(path)
    assert len(rows) == 24 and len({(r["agent"], r["beta"], r["scenario"]) for r in rows}) == 24
    assert comparable(rows) == comparable(read(reference / "leaderboard.csv"))


@pytest.mark.slow
def test_serial_and_local_parallel_give_identical_rows(tiny_sweep, tmp_path):
    out = tmp_path / "parallel"
    assert leaderboard.main([*TINY, "--backend", "local", "--workers", "2", "--out", str(out)]) == 0
    assert comparable(read(out / "leaderboard.csv")) == comparable(read(tiny_sweep / "leaderboard.csv"))


@pytest.mark.slow
def test_ray_backend_gives_identical_rows(tiny_sweep, tmp_path):
    import ray  # installed by the test set-up (make install: the [ray] extra)

    assert ray.__version__
    out = tmp_path / "ray"
    assert leaderboard.main([*TINY, "--backend", "ray", "--workers", "2", "--out", str(out)]) == 0
    assert comparable(read(out / "leaderboard.csv")) == comparable(read(tiny_sweep / "leaderboard.csv"))


def test_figures_are_drawn(tmp_path):
    args = [
        "--agents",
        "infadapter",
        "static-over",
        "--seeds",
        "0",
        "--scenarios",
        "test1",
        "--betas",
        "0.05",
        "--backend",
        "serial",
    ]
    assert leaderboard.main([*args, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "beta_sweep.png").stat().st_size > 10_000
    assert (tmp_path / "timeline_infadapter_test1_beta0.05.png").stat().st_size > 10_000
    assert "Verdict" not in (tmp_path / "summary.md").read_text()  # no VPA in this sweep: no headline verdict


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agents", "vpa"], "unknown agent 'vpa'; valid agents: infadapter, ms+, oracle"),
        (["--scenarios", "day3"], "unknown scenario 'day3'; valid scenarios: test1, test2, test3, test4, test5, test6"),
        (["--betas", "0.1,-1"], "--betas: -1.0 is not a finite number >= 0"),
        (["--backend", "spark"], "unknown backend 'spark'"),
    ],
)
def test_bad_input_is_reported_not_raised(args, message, tmp_path, capsys):
    assert leaderboard.main([*args, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_unwritable_output_folder_is_reported(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert leaderboard.main([*TINY, "--out", str(blocker / "sub")]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_reconfigurations_count_changes_from_the_starting_deployment():
    from infadapter_env.core.rollout import episode_metrics, replay

    settings = {"scenario": "paper", "initial_cores": [0, 0, 8, 0, 12], "seed": 0}
    warm = replay(settings, [[0, 0, 8, 0, 12]] * 3 + [[0, 0, 10, 0, 0]])
    assert episode_metrics(warm, settings)["reconfigurations"] == 1
    cold = replay({"scenario": "paper", "seed": 0}, [[0, 0, 8, 0, 12]] * 4)
    assert episode_metrics(cold, {"scenario": "paper"})["reconfigurations"] == 1


def test_rows_of_another_physics_version_are_refused(tiny_sweep, tmp_path, capsys):
    rows = read(tiny_sweep / "leaderboard.csv")
    assert json.loads(rows[0]["env_settings"])["sim_version"] == SIM_VERSION
    old = dict(rows[0])
    settings = json.loads(old["env_settings"])
    del settings["sim_version"]  # rows of physics v0 carried no version
    old["env_settings"] = json.dumps(settings, sort_keys=True)
    path = write(tmp_path / "old.csv", [old])
    assert validate.main([str(path)]) == 1
    assert f"recorded with simulation physics v0; this version of the benchmark simulates {SIM_VERSION}" in (
        capsys.readouterr().out
    )
    # rows of physics v1 (one fast model per variant, not per replica) are refused too
    old["env_settings"] = json.dumps(settings | {"sim_version": "v1"}, sort_keys=True)
    path = write(tmp_path / "v1.csv", [old])
    assert validate.main([str(path)]) == 1
    assert "recorded with simulation physics v1" in capsys.readouterr().out
    # and a sweep into a folder that holds them sets them aside (kept) and plays afresh
    from infadapter_env.leaderboard.sweep import set_aside_other_physics

    folder = tmp_path / "board"
    folder.mkdir()
    old["row_sha256"] = row_digest(old)  # a v1 file's rows are whole, not edited
    write(folder / "leaderboard.csv", [old, rows[1]])
    (folder / "leaderboard.v1.csv").write_text("an earlier set-aside\n")
    said = []
    set_aside_other_physics(folder / "leaderboard.csv", said.append)
    assert not (folder / "leaderboard.csv").exists() and len(read(folder / "leaderboard.v1.1.csv")) == 2
    assert (folder / "leaderboard.v1.csv").read_text() == "an earlier set-aside\n"
    assert said and f"held rows of simulation physics v1 (this version simulates {SIM_VERSION})" in said[0]
    write(folder / "leaderboard.csv", [rows[1]])  # this version's rows stay
    set_aside_other_physics(folder / "leaderboard.csv", said.append)
    assert (folder / "leaderboard.csv").exists() and len(said) == 1


# The columns of a leaderboard.csv written by physics v0 (``scripts/protocol.py`` before ab8ca00).
V0_COLUMNS = [
    "agent",
    "beta",
    "scenario",
    "seed",
    "objective",
    "slo_violation_pct",
    "dropped_pct",
    "aa_effective",
    "aa_planned",
    "mean_cores",
    "loading_cost",
    "reconfigurations",
    "fallbacks",
    "arrivals",
    "steps",
    "decision_ms_mean",
    "decision_ms_p99",
    "wall_s",
    "actions",
    "env_settings",
    "agent_options",
    "package_version",
    "git_commit",
    "row_sha256",
]


def test_a_file_of_physics_v0_is_refused_by_its_version_not_its_columns(tiny_sweep, tmp_path, capsys):
    row = read(tiny_sweep / "leaderboard.csv")[0]
    settings = json.loads(row["env_settings"])
    del settings["sim_version"]  # rows of physics v0 carried no version
    old = {column: row.get(column, "0") for column in V0_COLUMNS} | {"env_settings": json.dumps(settings)}
    path = tmp_path / "v0.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=V0_COLUMNS)
        writer.writeheader()
        writer.writerow(old)
    assert validate.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert f"recorded with simulation physics v0; this version of the benchmark simulates {SIM_VERSION}" in err
    assert "columns" not in err


def test_load_results_gives_typed_rows(tiny_sweep):
    from infadapter_env.leaderboard import load_results

    results = load_results(tiny_sweep)  # the folder, or the CSV itself
    assert list(results.columns) == list(COLUMNS) and len(results) == 4
    assert results["objective"].dtype == float and results["beta"].dtype == float
    assert results["seed"].dtype == "int64" and results["steps"].dtype == "int64"
    by_agent = results.groupby("agent")["objective"].mean()
    assert set(by_agent.index) == {"static-under", "ms+"}
    assert load_results(tiny_sweep / "leaderboard.csv").equals(results)


def test_evaluate_plays_any_agent_as_the_leaderboard_does(tiny_sweep):
    import numpy as np

    import infadapter_agents
    from infadapter_env.leaderboard import evaluate, load_results

    board = load_results(tiny_sweep)
    mine = evaluate(lambda: infadapter_agents.make("ms+"), betas=[0.1], scenarios=["test1"], seeds=[0])
    assert len(mine) == 1 and list(mine.columns) == list(COLUMNS)
    recorded = board[(board["agent"] == "ms+") & (board["beta"] == 0.1)].iloc[0]
    assert mine.iloc[0]["objective"] == recorded["objective"]
    assert mine.iloc[0]["actions"] == recorded["actions"]

    class AlwaysResNet50:  # not registered: anything with reset and act
        def reset(self, info):
            pass

        def act(self, observation, info):
            return np.array([0, 0, 1, 0, 0, 0, 0, 12, 0, 0])  # action_mode "replicas": ResNet50 x 12 cores

    rows = evaluate(AlwaysResNet50, betas=[0.05, 0.1], scenarios=["test1"], seeds=[0])
    assert list(rows["agent"]) == ["AlwaysResNet50"] * 2 and (rows["mean_cores"] == 12).all()
    assert rows.loc[0, "objective"] > rows.loc[1, "objective"]  # the same cores cost more at beta 0.1
    with pytest.raises(ValueError, match="unknown scenario"):
        evaluate(AlwaysResNet50, scenarios=["day3"])


def test_one_folder_holds_one_protocol(tiny_sweep, tmp_path, capsys):
    import shutil

    out = tmp_path / "mixed"
    shutil.copytree(tiny_sweep, out)  # rows of protocol "default"
    args = ["--protocol", "paper-2023", "--agents", "vpa-50/busy", "--betas", "0.05", "--seeds", "0"]
    assert leaderboard.main([*args, "--backend", "serial", "--no-figures", "--out", str(out)]) == 2
    assert "holds rows of protocol default; one folder holds one protocol" in capsys.readouterr().err


def test_a_duplicated_key_is_reported_with_its_first_line(tiny_sweep, tmp_path, capsys):
    rows = read(tiny_sweep / "leaderboard.csv")
    path = write(tmp_path / "twice.csv", [rows[0], rows[1], rows[0]])
    assert validate.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}, line 4 (static-under beta=0.02 test1 seed=0): duplicate of line 2 (same protocol, agent" in out
    assert "2 of 3 rows valid" in out


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("beta", "0.05", "beta column 0.05 but the recorded settings have beta 0.02"),
        ("seed", "3", "seed column 3 but the recorded settings have seed 0"),
        (
            "scenario",
            "test2",
            "scenario column 'test2' (default: window_start_s=53579) but the recorded settings have "
            "window_start_s=19632",
        ),
        ("scenario", "day3", "scenario column 'day3' is not a scenario of default (test1, test2"),
        ("agent", "ms+", "agent column 'ms+' (agent 'ms+' in protocol default) but the recorded options name agent "),
        (
            "protocol",
            "paper-2023",
            "scenario column 'test1' is not a scenario of paper-2023 (paper)",
        ),
    ],
)
def test_key_columns_that_disagree_with_the_recorded_settings_are_reported(
    tiny_sweep, tmp_path, column, value, message, capsys
):
    row = read(tiny_sweep / "leaderboard.csv")[0]
    assert (row["agent"], row["beta"], row["scenario"]) == ("static-under", "0.02", "test1")
    row[column] = value
    row["row_sha256"] = row_digest(row)  # a consistent checksum: only the key gives it away
    path = write(tmp_path / "relabelled.csv", [row])
    assert validate.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}, line 2 (" in out and message in out and "checksum" not in out


def test_env_settings_flags_reach_every_row_and_the_rows_validate(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("flat.txt").write_text("40\n" * 600)  # 600 s of 40 req/s
    sweep = ["--protocol", "validation", "--agents", "static-under", "--seeds", "0", "--scenarios", "paper"]
    sweep += ["--betas", "0.05", "--no-figures", "--backend", "serial"]
    given = ["--slo-ms", "1000", "--budget-cores", "24", "--interval-s", "60", "--trace", "flat.txt"]
    given += ["--server-speed", "0.9"]
    assert leaderboard.main([*sweep, *given, "--out", "out"]) == 0
    (row,) = read(tmp_path / "out" / "leaderboard.csv")
    settings = json.loads(row["env_settings"])
    recorded = {k: settings[k] for k in ("slo_ms", "budget_cores", "interval_s", "trace", "server_speed")}
    trace = str(tmp_path / "flat.txt")
    assert recorded == {"slo_ms": 1000, "budget_cores": 24, "interval_s": 60, "trace": trace, "server_speed": 0.9}
    assert row["steps"] == "10" and float(row["arrivals"]) == 40 * 600
    monkeypatch.chdir(tmp_path.parent)  # the recorded trace is an absolute path
    assert validate.main([str(tmp_path / "out" / "leaderboard.csv")]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    assert leaderboard.main([*sweep, *given[2:], "--out", "out"]) == 2  # resumed without --slo-ms: refused
    err = capsys.readouterr().err
    assert "holds rows played with slo_ms=1000 (this sweep: slo_ms=750); one folder holds one set of env" in err


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["--slo-ms", "600"], "slo_ms=600 on scenario 'test1' (agent 'static-under'): slo_ms must be one of 500, 750"),
        (["--budget-cores", "0"], "budget_cores must be an integer in 1..1000, got 0"),
        (["--interval-s", "7200"], "interval_s must be an integer in 1..3600, got 7200"),
        (["--trace", "missing.txt"], "--trace: no file missing.txt"),
        (["--trace", "short.txt", "--scenarios", "test1"], "on scenario 'test1' (agent 'static-under'): episode_len"),
        (["--trace", "short.txt", "--interval-s", "60", "--protocol", "validation"], "is shorter than one interval"),
    ],
)
def test_bad_env_settings_flags_are_named(given, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("short.txt").write_text("40\n" * 30)
    args = ["--agents", "static-under", "--seeds", "0", "--betas", "0.05", "--backend", "serial"]
    scenarios = ["--scenarios", "paper" if "validation" in given else "test1"]
    assert leaderboard.main([*args, *scenarios, *given, "--out", "out"]) == 2
    assert message in capsys.readouterr().err


def test_profile_and_variants_flags_pass_to_the_env_settings(tmp_path):
    from infadapter_env.leaderboard.episode import Task, task_env_kwargs
    from infadapter_scripts.arguments import parse

    (tmp_path / "profile.csv").write_text("made elsewhere")
    (tmp_path / "variants.csv").write_text("made elsewhere")
    argv = ["--profile", str(tmp_path / "profile.csv"), "--variants", str(tmp_path / "variants.csv")]
    overrides = leaderboard.env_overrides(parse(leaderboard.Args, argv, prog="infadapter leaderboard"))
    assert overrides == {"profile": str(tmp_path / "profile.csv"), "variants": str(tmp_path / "variants.csv")}
    kwargs = task_env_kwargs(Task("default", "hpa", 0.05, "test1", 0, tuple(overrides.items())))
    assert kwargs["profile"] == str(tmp_path / "profile.csv") and kwargs["window_start_s"] == TEST_WINDOW_STARTS[0]


def _children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid`` and their command lines (from /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rpartition(")")[2].split()[:2]
            if int(ppid) == pid and state != "Z":
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_a_sweep_killed_with_sigkill_leaves_no_workers(tmp_path):
    sweep = ["--agents", "static-under", "ms+", "--seeds", "0", "--scenarios", "test1", "test2", "--no-figures"]
    sweep += ["--betas", "0.01,0.02,0.05,0.1,0.2,0.5", "--backend", "local", "--workers", "2", "--out", str(tmp_path)]
    command = [sys.executable, "-m", "infadapter_scripts.cli", "leaderboard", *sweep]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    path = tmp_path / "leaderboard.csv"
    try:
        deadline, workers = time.time() + 120, {}
        while time.time() < deadline and process.poll() is None:
            workers = {pid: cmd for pid, cmd in _children(process.pid).items() if "spawn_main" in cmd}
            if len(workers) == 2 and path.exists() and len(path.read_text().splitlines()) >= 2:
                break  # the workers are playing: a row is written
            time.sleep(0.02)
        assert len(workers) == 2 and process.poll() is None
        process.kill()  # the sweep's process only; nothing of it runs on
        process.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.05)
        assert not [pid for pid in workers if _alive(pid)]
        finished = read(path)
        assert 1 <= len(finished) < 24 and all(row_digest(row) == row["row_sha256"] for row in finished)
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_agents_without_weights_act_the_same_at_every_beta():
    # The sweep plays an agent with uses_weights=False once per (scenario, seed) and scores it at
    # every beta: that holds only if its actions do not depend on beta.
    import infadapter_agents
    from infadapter_env.core.rollout import play_steps

    weightless = [n for n in infadapter_agents.names() if not infadapter_agents.make(n).uses_weights]
    assert {"vpa-18", "vpa-152", "hpa", "mark", "autopilot", "ppo", "a2c"} <= set(weightless)
    kwargs = {"scenario": "paper", "action_mode": "replicas", "episode_length_s": 600, "window_start_s": 450}
    for name in weightless:
        low = play_steps(infadapter_agents.make(name), kwargs | {"beta": 0.01}, seed=0)
        high = play_steps(infadapter_agents.make(name), kwargs | {"beta": 0.2}, seed=0)
        assert low.actions == high.actions, name
    for name in ("infadapter", "static-over"):  # these plan with beta
        assert infadapter_agents.make(name).uses_weights


def test_a_rescored_row_is_the_row_its_own_episode_gives(tmp_path):
    from dataclasses import replace

    from infadapter_env.leaderboard.episode import Task, check_row, run_task

    task = Task("default", "hpa", 0.01, "test1", 1, rescored_betas=(0.1, 0.2))
    rows = run_task(task)
    assert [row["beta"] for row in rows] == [0.01, 0.1, 0.2]
    own = run_task(replace(task, beta=0.2, rescored_betas=()))[0]
    untimed = [c for c in COLUMNS if c not in TIMING_COLUMNS]
    assert {c: rows[2][c] for c in untimed} == {c: own[c] for c in untimed}
    assert rows[0]["objective"] > rows[2]["objective"]  # the same cores cost more at a higher beta
    for row in rows:
        assert check_row({k: str(v) for k, v in row.items()}) == []  # replays at the row's own beta
    # an agent that reads the weights plays each beta of its task: the rows of its own episodes
    both = run_task(Task("default", "ms+", 0.01, "test1", 1, rescored_betas=(0.2,)))
    own = run_task(Task("default", "ms+", 0.2, "test1", 1))[0]
    assert {c: both[1][c] for c in untimed} == {c: own[c] for c in untimed}


def test_seed_independent_agents_decide_the_same_at_every_seed():
    # The sweep plays a seed_independent agent at one seed and replays its decisions at the others
    # where the seed does not move the counts it reads (the default protocol; not paper-2023's
    # load generator, where the same agents decide otherwise at another seed).
    import infadapter_agents
    from infadapter_env.core.rollout import play_steps
    from infadapter_env.core.settings import EnvSettings
    from infadapter_env.leaderboard.episode import contender, task_env_kwargs
    from infadapter_env.leaderboard.sweep import agent_traits

    declared = [n for n in infadapter_agents.names() if infadapter_agents.make(n).seed_independent]
    assert {"infadapter", "ms+", "oracle", "static-over", "static-under"} <= set(declared)
    assert not {"hpa", "vpa-50", "ppo", "autopilot"} & set(declared)  # they read usage or latency
    for protocol, scenario, labels in (("default", "test1", declared), ("paper-2023", "paper", ["infadapter"])):
        for label in labels:
            playing = contender(protocol, label)
            kwargs = task_env_kwargs(Task(protocol, label, 0.05, scenario, 0)) | {"episode_length_s": 600}
            hold = get_protocol(protocol).hold_s
            first, second = (
                play_steps(infadapter_agents.make(playing.agent, **playing.options), kwargs, seed, hold)
                for seed in (0, 3)
            )
            same = (first.actions, first.quotas) == (second.actions, second.quotas)
            assert same != EnvSettings.from_kwargs(**kwargs).seed_moves_counts, (protocol, label)
    assert agent_traits(get_protocol("paper-2023"), ["infadapter", "ms+"], "paper", {})[1] == set()


def test_reusing_decisions_and_episodes_changes_no_row(tmp_path):
    from infadapter_env.leaderboard.sweep import run_sweep

    given = ("default", ["infadapter", "static-over", "hpa"], ["test2"], [0.01, 0.2], [0, 1])
    rows = {}
    for reuse in (True, False):
        (tmp_path / str(reuse)).mkdir()
        rows[reuse] = run_sweep(*given, tmp_path / str(reuse), backend="serial", log=lambda _: None, reuse=reuse)
    untimed = [c for c in COLUMNS if c not in (*TIMING_COLUMNS, "row_sha256")]
    ordered = {k: v.sort_values(["agent", "beta", "seed"])[untimed].reset_index(drop=True) for k, v in rows.items()}
    assert len(ordered[True]) == 12
    pd.testing.assert_frame_equal(ordered[True], ordered[False])


def test_an_agent_that_fails_is_named_with_its_episode(tmp_path, monkeypatch, capsys, isolated_registry):
    (tmp_path / "broken_agents.py").write_text(
        "import numpy as np\n"
        "class WrongShape:\n"
        "    def reset(self, info): pass\n"
        "    def act(self, observation, info): return np.zeros((2, 5), dtype=int)\n"
        "def explodes(**options): raise RuntimeError('boom in factory')\n"
    )

    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["--seeds", "0", "--scenarios", "test1", "--betas", "0.05", "--backend", "serial", "--no-figures"]
    assert leaderboard.main(["--agents", "broken_agents:WrongShape", *args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "agent 'broken_agents:WrongShape', scenario 'test1', seed 0, beta 0.05: ValueError: action" in err
    assert "Traceback" not in err
    assert leaderboard.main(["--agents", "broken_agents:explodes", *args, "--out", str(tmp_path / "b")]) == 2
    assert "making it failed: RuntimeError: boom in factory" in capsys.readouterr().err
