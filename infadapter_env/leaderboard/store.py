"""The leaderboard CSV: one row per line, appended as episodes finish, checked when read.

Every row sits on one line, so a torn last line cannot swallow the rows before it; a row whose
checksum does not match (half-written or edited) or that repeats a key is dropped when read and
redone by the next sweep. ``load_results`` gives the rows as a typed pandas DataFrame.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import pandas as pd

from infadapter_env.leaderboard.episode import COLUMNS, METRIC_COLUMNS, TIMING_COLUMNS, row_digest

CSV_NAME = "leaderboard.csv"
TRACES_FOLDER = "traces"  # beside the CSV: traces given as arrays, each in <content digest>.txt
KEY = ("protocol", "agent", "beta", "scenario", "seed")
INTEGER_COLUMNS = ("seed", "reconfigurations", "fallbacks", "arrivals", "steps")


class ResultsError(ValueError):
    """A results file this version cannot read (reported as one line, not a traceback)."""


def row_key(row: dict[str, Any]) -> tuple[str, str, float, str, int]:
    return (str(row["protocol"]), str(row["agent"]), float(row["beta"]), str(row["scenario"]), int(row["seed"]))


def read_rows(path: Path) -> tuple[list[dict[str, str]], int]:
    """Valid rows of a leaderboard CSV (as written, strings) and the number of lines dropped."""
    if not path.exists():
        return [], 0
    lines = path.read_text().splitlines()
    if not lines:
        return [], 0
    if next(csv.reader([lines[0]])) != list(COLUMNS):
        raise ResultsError(f"{path} has other columns than this version writes; move it away or choose another --out")
    rows, dropped, seen = [], 0, set()
    for line in lines[1:]:
        fields = next(csv.reader([line]), [])
        row = dict(zip(COLUMNS, fields, strict=False))
        if len(fields) != len(COLUMNS) or row_digest(row) != row["row_sha256"]:
            dropped += 1
            continue
        key = row_key(row)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        rows.append(row)
    return rows, dropped


def format_line(row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([row[c] for c in COLUMNS])
    return buffer.getvalue()


def rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace the file with exactly these rows (atomic: a temporary file, then a rename)."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w") as handle:
        handle.write(format_line({c: c for c in COLUMNS}))
        for row in rows:
            handle.write(format_line(row))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(format_line(row))
        handle.flush()
        os.fsync(handle.fileno())


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows (as written or as built) as a typed DataFrame: metrics and beta as floats, counts and
    seeds as integers, the rest as strings; columns in the CSV's order."""
    frame = pd.DataFrame([{c: row[c] for c in COLUMNS} for row in rows], columns=list(COLUMNS))
    for column in ("beta", *METRIC_COLUMNS, *TIMING_COLUMNS):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in INTEGER_COLUMNS:
        frame[column] = frame[column].astype(float).astype("int64")
    for column in ("protocol", "agent", "scenario", "actions", "quotas", "env_settings", "agent_options"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def load_results(path: str | Path) -> pd.DataFrame:
    """The valid rows of a leaderboard CSV (a file, or a folder holding ``leaderboard.csv``) as a typed
    DataFrame; rows that fail their checksum are left out (``read_rows`` counts them)."""
    path = Path(path)
    if path.is_dir():
        path = path / CSV_NAME
    if not path.is_file():
        raise ResultsError(f"no leaderboard results at {path}")
    rows, _ = read_rows(path)
    return to_frame(rows)
