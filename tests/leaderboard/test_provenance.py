"""Rows prove who played them: traces by content digest, agents re-run, provenance checked."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from infadapter_env.leaderboard.episode import COLUMNS, row_digest
from infadapter_env.leaderboard.sweep import run_sweep
from infadapter_scripts import validate

ARRIVALS = np.concatenate([np.full(150, 40.0), np.full(150, 90.5)])  # 300 s, fractional counts


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path


def sweep(out: Path) -> Path:
    env = {"trace": ARRIVALS, "interval_s": 30}
    run_sweep("validation", ["static-under", "ms+"], ["paper"], [0.05], [0], out, "serial", env=env, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def array_sweep(tmp_path_factory) -> Path:
    return sweep(tmp_path_factory.mktemp("array") / "board")


def test_a_trace_given_as_an_array_is_kept_by_its_digest_and_replays_from_another_folder(tmp_path, capsys):
    board = sweep(tmp_path / "board")
    settings = json.loads(read(board / "leaderboard.csv")[0]["env_settings"])
    kept = Path(settings["trace"])
    assert kept.parent == (board / "traces").resolve() and kept.name == f"{settings['trace_sha256']}.txt"
    assert np.array_equal(np.loadtxt(kept), ARRIVALS)
    moved = tmp_path / "moved"
    shutil.move(board, moved)  # the recorded path is gone: the copy beside the CSV is found
    assert validate.main([str(moved / "leaderboard.csv")]) == 0
    assert "2 of 2 rows valid" in capsys.readouterr().out
    edited = moved / "traces" / kept.name
    edited.write_text(edited.read_text().replace("90.5", "91.5"))
    assert validate.main([str(moved / "leaderboard.csv")]) == 1
    assert "has other content than the row recorded (sha256" in capsys.readouterr().out


def relabelled(rows: list[dict[str, str]], source: str, target: str) -> dict[str, str]:
    """``target``'s row carrying ``source``'s deployments and metrics, its checksum recomputed: a
    consistent row that ``target`` never played."""
    played = next(r for r in rows if r["agent"] == source)
    forged = next(r for r in rows if r["agent"] == target) | {
        k: played[k] for k in COLUMNS if k not in ("agent", "agent_options", "row_sha256")
    }
    forged["row_sha256"] = row_digest(forged)
    return forged


def test_a_row_labelled_with_an_agent_that_did_not_play_it_fails_only_when_agents_are_re_run(
    array_sweep, tmp_path, capsys
):
    rows = read(array_sweep / "leaderboard.csv")
    assert validate.main(["--rerun-agents", str(array_sweep / "leaderboard.csv")]) == 0
    capsys.readouterr()
    path = write(tmp_path / "forged.csv", [relabelled(rows, "static-under", "ms+")])
    assert validate.main([str(path)]) == 0  # consistent: its metrics replay from its actions
    capsys.readouterr()
    assert validate.main(["--rerun-agents", str(path)]) == 1
    assert "re-running agent 'ms+' gives other actions (from step 1)" in capsys.readouterr().out


def test_provenance_is_checked_against_the_running_package_when_asked(array_sweep, tmp_path, capsys):
    row = read(array_sweep / "leaderboard.csv")[0] | {"package_version": "0.0.1", "git_commit": "abc1234"}
    row["row_sha256"] = row_digest(row)
    path = write(tmp_path / "old.csv", [row])
    assert validate.main([str(path)]) == 0
    capsys.readouterr()
    assert validate.main(["--check-provenance", str(path)]) == 1
    out = capsys.readouterr().out
    assert "package_version '0.0.1', running infadapter-gym" in out and "git_commit 'abc1234', running" in out
