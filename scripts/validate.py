"""Replay leaderboard rows from their recorded settings, actions and quotas and check every metric.

    infadapter validate results/leaderboard/leaderboard.csv        (or: python -m infadapter_scripts.validate ...)

A row passes when it was recorded with this version's simulation physics (``sim_version``), its
checksum matches its content, no row before it has the same key (protocol, agent, beta, scenario,
seed), its key columns agree with its recorded settings (the beta and seed it was played with; for a
built-in protocol, the scenario's and the protocol's settings and the agent), and replaying its
actions (and the dispatcher quotas it set) in an environment built from its recorded settings gives
the same metrics (within 1e-9). Timing columns are measurements and are not checked; ``fallbacks``
comes from the agent and is covered by the checksum. Each problem is reported with the file and line.
Exit status 0 if every row passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from pathlib import Path

from infadapter_env.core.scalar_env import SIM_VERSION
from infadapter_env.leaderboard.episode import COLUMNS, check_row, other_physics_problem, recorded_physics
from infadapter_env.leaderboard.store import KEY, row_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infadapter validate", description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="a leaderboard.csv")
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
    first_line: dict[tuple, int] = {}  # the line of each key's first row
    for line_no, row in enumerate(rows, start=2):
        problems = check_row(row, replays)
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
