"""Replay leaderboard rows from their recorded settings and actions and check every metric.

    infadapter validate results/leaderboard/leaderboard.csv        (or: python -m infadapter_scripts.validate ...)

A row passes when it was recorded with this version's simulation physics (``sim_version``), its
checksum matches its content, and replaying its actions (and the dispatcher quotas it set) in an
environment built from its recorded settings gives the same metrics (within 1e-9). Timing columns are
measurements and are not checked; ``fallbacks`` comes from the agent and is covered by the checksum.
Exit status 0 if every row passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from infadapter_env.env import SIM_VERSION
from infadapter_scripts.protocol import COLUMNS, METRIC_COLUMNS, episode_metrics, replay, row_digest, row_quotas

REPLAYED = tuple(c for c in METRIC_COLUMNS if c != "fallbacks")


def check_row(row: dict[str, str]) -> list[str]:
    """The problems of one row (empty if it is valid)."""
    problems = []
    if row_digest(row) != row["row_sha256"]:
        problems.append("checksum does not match the row's content")
    try:
        settings = json.loads(row["env_settings"])
        recorded_version = settings.get("sim_version", "v0")
        if recorded_version != SIM_VERSION:
            return [
                *problems,
                f"recorded with simulation physics {recorded_version}; this version of the benchmark simulates "
                f"{SIM_VERSION} and cannot replay it (re-run the leaderboard)",
            ]
        infos = replay(settings, json.loads(row["actions"]), row_quotas(row))
    except (ValueError, KeyError, TypeError) as exc:
        return [*problems, f"cannot replay: {exc}"]
    metrics = episode_metrics(infos, settings)
    for column in REPLAYED:
        recorded, replayed = float(row[column]), float(metrics[column])
        if math.isnan(recorded) and math.isnan(replayed):  # not measured by this simulator
            continue
        if not math.isclose(recorded, replayed, rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"{column}: recorded {recorded!r}, replayed {replayed!r}")
    return problems


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
        print(f"infadapter validate: error: {args.csv} does not have the leaderboard's columns", file=sys.stderr)
        return 2
    failed = 0
    for line_no, row in enumerate(rows, start=2):
        problems = check_row(row)
        if problems:
            failed += 1
            label = f"{row['agent']} beta={row['beta']} {row['scenario']} seed={row['seed']}"
            print(f"{args.csv}, line {line_no} ({label}): " + "; ".join(problems))
    print(f"{len(rows) - failed} of {len(rows)} rows valid")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
