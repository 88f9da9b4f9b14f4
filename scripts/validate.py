"""Replay leaderboard rows from their recorded settings, actions and quotas and check every metric.

    infadapter validate results/leaderboard/leaderboard.csv        (or: python -m infadapter_scripts.validate ...)
    infadapter validate --rerun-agents --check-provenance results/leaderboard/leaderboard.csv

A row passes when it was recorded with this version's simulation physics (``sim_version``), its
checksum matches its content, no row before it has the same key (protocol, agent, beta, scenario,
seed), its key columns agree with its recorded settings (the beta and seed it was played with; for a
built-in protocol, the scenario's and the protocol's settings and the agent), and replaying its
actions (and the dispatcher quotas it set) in an environment built from its recorded settings gives
the same metrics (within 1e-9). A trace of one's own is found by its recorded content digest, at its
recorded path or in ``traces/`` beside the CSV (where the leaderboard keeps traces given as arrays);
an edited trace file is named as such.

That proves the rows consistent, not who played them. ``--rerun-agents`` makes each row's agent
again from its recorded options (built-in or plugin) and plays the row's episode: its actions,
dispatcher quotas and fallbacks must equal the recorded ones (agents are deterministic given the
seed; a row labelled with one agent but played by another fails). ``--check-provenance`` fails rows
whose package version or commit is not the running package's. The timing columns
(``decision_ms_mean``, ``decision_ms_p99``, ``wall_s``) are measurements of the machine that ran
them: they are outside the checksum and are never checked.
Each problem is reported with the file and line. Exit status 0 if every row passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from pathlib import Path

from tqdm import tqdm

from infadapter_env.core.scalar_env import SIM_VERSION
from infadapter_env.leaderboard.episode import (
    COLUMNS,
    check_row,
    other_physics_problem,
    provenance_problems,
    recorded_physics,
    rerun_problems,
)
from infadapter_env.leaderboard.store import KEY, TRACES_FOLDER, row_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infadapter validate", description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="a leaderboard.csv")
    parser.add_argument(
        "--rerun-agents", action="store_true", help="play each row's agent again and compare its actions (slow)"
    )
    parser.add_argument(
        "--check-provenance", action="store_true", help="fail rows of another package version or commit"
    )
    args = parser.parse_args(argv)
    try:
        with args.csv.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        print(f"infadapter validate: error: cannot read {args.csv}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if rows and list(rows[0]) != list(COLUMNS):
        # A file of an older physics version has older columns too: say which version it is.
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            version = recorded_physics(json.loads(rows[0]["env_settings"]))
            if version != SIM_VERSION:
                print(f"infadapter validate: error: {args.csv}: {other_physics_problem(version)}", file=sys.stderr)
                return 2
        print(f"infadapter validate: error: {args.csv} does not have the leaderboard's columns", file=sys.stderr)
        return 2
    if not rows:
        print(f"infadapter validate: error: {args.csv} holds no rows", file=sys.stderr)
        return 1
    failed = 0
    replays: dict = {}  # episodes replayed once for the rows that differ only in beta
    reruns: dict = {}  # the decisions of episodes played again, once for the rows an agent played alike
    first_line: dict[tuple, int] = {}  # the line of each key's first row
    folders = [args.csv.parent / TRACES_FOLDER]
    progress = tqdm(
        rows, desc="validate", unit="row", file=sys.stderr, disable=None if not args.rerun_agents else False
    )
    for line_no, row in enumerate(progress, start=2):
        problems = check_row(row, replays, folders)
        if args.rerun_agents:
            problems += rerun_problems(row, reruns, folders)
        if args.check_provenance:
            problems += provenance_problems(row)
        key: tuple = tuple(row[c] for c in KEY)
        with contextlib.suppress(TypeError, ValueError):  # else check_row names the unreadable columns
            key = row_key(row)
        if key in first_line:
            problems.insert(0, f"duplicate of line {first_line[key]} (same {', '.join(KEY)})")
        first_line.setdefault(key, line_no)
        if problems:
            failed += 1
            label = f"{row['agent']} beta={row['beta']} {row['scenario']} seed={row['seed']}"
            print(f"{args.csv}, line {line_no} ({label}): " + "; ".join(problems))
    print(f"{len(rows) - failed} of {len(rows)} rows valid")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
