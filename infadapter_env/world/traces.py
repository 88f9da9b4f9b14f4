"""Request traces: the shipped Twitter trace, its named scenarios, windows, user files, synthetic loads.

A trace is a per-second count of arriving requests (requests/s at 1 s resolution). Every trace
carries the seconds that precede it (``history``), so a controller has a forecasting history from
the first decision on; synthetic and user traces, which have no past, repeat their first value (or,
given at a coarser resolution, their first bin). Named scenarios live in a registry
(``register_scenario``).
"""

from __future__ import annotations

import hashlib
import lzma
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from infadapter_env.world.shipped_data import NotTextError, data_file, decode_text

DAY_S = 86_400
HISTORY_S = 600
TWITTER_LENGTH_S = 1_899_061
PAPER_SLICE_S = (15 * DAY_S + 82 * 60, 15 * DAY_S + 103 * 60)
TRAIN_DAYS = (0, 14)  # days 0-13 (the paper's LSTM training split)
TEST_DAYS = (14, 22)  # days 14-21 (the last day is partial)
GAP_MIN_S = 60  # a run of at least this many zero seconds is a hole in the source data
MAX_RESOLUTION_S = DAY_S  # the coarsest counts a trace file may give (one per day)
SYNTHETIC_KINDS = ("constant", "step", "sine", "bursty", "spike", "ramp", "square")


@dataclass(frozen=True)
class Trace:
    """Per-second arrivals of one episode source, with the seconds that precede it."""

    name: str
    arrivals: np.ndarray
    history: np.ndarray
    start_s: int = 0
    padded_history_s: int = 0  # leading seconds of ``history`` that repeat a value, not real data

    def __post_init__(self) -> None:
        for label, values in (("arrivals", self.arrivals), ("history", self.history)):
            if values.ndim != 1:
                raise ValueError(f"trace {self.name!r}: {label} must be one-dimensional")
            if values.size and (not np.all(np.isfinite(values)) or values.min() < 0):
                raise ValueError(f"trace {self.name!r}: {label} must be finite and >= 0")
        if self.arrivals.size == 0:
            raise ValueError(f"trace {self.name!r} is empty")

    @property
    def length_s(self) -> int:
        return int(self.arrivals.size)

    def scaled(self, multiplier: float) -> Trace:
        """The same trace with every rate multiplied by ``multiplier`` (> 0)."""
        if not (isinstance(multiplier, int | float) and math.isfinite(multiplier) and multiplier > 0):
            raise ValueError(f"rate multiplier must be a finite number > 0, got {multiplier!r}")
        if multiplier == 1:
            return self
        return Trace(
            f"{self.name}x{multiplier:g}",
            self.arrivals * multiplier,
            self.history * multiplier,
            self.start_s,
            self.padded_history_s,
        )

    @property
    def real_history_minutes(self) -> int:
        """Whole minutes of genuine trace in the (at most 10-minute) history a controller sees."""
        return min(self.real_history_s, HISTORY_S) // 60

    @property
    def real_history_s(self) -> int:
        """Seconds of genuine trace that precede the first second."""
        return int(self.history.size - self.padded_history_s)

    def window(self, start_s: int, length_s: int) -> Trace:
        """The ``length_s`` seconds from ``start_s``, with the seconds before it as history."""
        if length_s < 1 or start_s < 0 or start_s + length_s > self.length_s:
            raise ValueError(
                f"window [{start_s}, {start_s + length_s}) is outside trace {self.name!r} of {self.length_s} s"
            )
        # Slice, never copy the whole source: windows of the 22-day trace are drawn at every reset.
        from_history = min(max(HISTORY_S - start_s, 0), self.history.size)
        own = self.arrivals[max(start_s - HISTORY_S, 0) : start_s]
        history = np.concatenate([self.history[self.history.size - from_history :], own]) if from_history else own
        return Trace(
            f"{self.name}[{start_s}:{start_s + length_s}]",
            self.arrivals[start_s : start_s + length_s],
            history,
            self.start_s + start_s,
            max(self.padded_history_s - (self.history.size - from_history), 0),
        )


@lru_cache(maxsize=1)
def load_twitter() -> np.ndarray:
    """The whole 22-day Twitter trace (1,899,061 s), read-only float64 requests per second."""
    path = data_file("traces", "workload.txt.xz")
    with lzma.open(path, "rt") as handle:
        values = np.array(handle.read().split(), dtype=np.float64)
    if values.size != TWITTER_LENGTH_S:
        raise ValueError(f"{path}: expected {TWITTER_LENGTH_S} values, found {values.size}")
    values.setflags(write=False)
    return values


def _twitter_range(name: str, begin_s: int, end_s: int) -> Trace:
    full = load_twitter()
    end_s = min(end_s, full.size)
    return Trace(name, full[begin_s:end_s], full[max(begin_s - HISTORY_S, 0) : begin_s], begin_s)


ScenarioBuilder = Callable[[], Trace]
_SCENARIOS: dict[str, ScenarioBuilder] = {}


def register_scenario(name: str, builder: ScenarioBuilder) -> None:
    """Name a trace: ``scenario(name)`` returns ``builder()`` (called at each request, so a builder
    that reads a large file should cache it). Names are unique; the built-in ones are
    ``paper``, ``train``, ``test`` and ``full``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a scenario name must be a non-empty string, got {name!r}")
    if name in _SCENARIOS:
        raise ValueError(f"scenario {name!r} is registered already")
    if not callable(builder):
        raise ValueError(f"scenario {name!r}: the builder must be a function returning a Trace, got {builder!r}")
    _SCENARIOS[name] = builder


def scenario_names() -> tuple[str, ...]:
    """Every registered scenario, in registration order (the built-in ones first)."""
    return tuple(_SCENARIOS)


def scenario(name: str) -> Trace:
    """A registered scenario's trace. The built-in ones are slices of the Twitter trace:

    ``paper``: day 15, minutes 82-103 (1,260 s), the paper's experiment. ``train``: days 0-13.
    ``test``: days 14-21. ``full``: all 22 days.
    """
    if name not in _SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; valid scenarios: {', '.join(_SCENARIOS)}")
    trace = _SCENARIOS[name]()
    if not isinstance(trace, Trace):
        raise ValueError(f"scenario {name!r}: its builder returned {type(trace).__name__}, not a Trace")
    return trace


register_scenario("paper", lambda: _twitter_range("paper", *PAPER_SLICE_S))
register_scenario("train", lambda: _twitter_range("train", TRAIN_DAYS[0] * DAY_S, TRAIN_DAYS[1] * DAY_S))
register_scenario("test", lambda: _twitter_range("test", TEST_DAYS[0] * DAY_S, TEST_DAYS[1] * DAY_S))
register_scenario("full", lambda: _twitter_range("full", 0, TWITTER_LENGTH_S))
SCENARIOS = scenario_names()  # the built-in scenarios; scenario_names() adds those registered since


def gap_mask(arrivals: np.ndarray, min_run_s: int = GAP_MIN_S) -> np.ndarray:
    """True for every second inside a run of at least ``min_run_s`` zero seconds."""
    zero = np.concatenate([[False], arrivals == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    mask = np.zeros(arrivals.size, dtype=bool)
    for begin, end in zip(edges[::2], edges[1::2], strict=True):
        if end - begin >= min_run_s:
            mask[begin:end] = True
    return mask


def valid_window_starts(trace: Trace, length_s: int, skip_gaps: bool = True) -> np.ndarray:
    """Every start second of a ``length_s`` window inside ``trace`` (avoiding data gaps if asked)."""
    count = trace.length_s - length_s + 1
    if length_s < 1 or count < 1:
        raise ValueError(f"window length {length_s} s does not fit trace {trace.name!r} of {trace.length_s} s")
    if not skip_gaps:
        return np.arange(count)
    in_gap = np.concatenate([[0], np.cumsum(gap_mask(trace.arrivals))])
    gap_seconds = in_gap[length_s:] - in_gap[:count]
    starts = np.flatnonzero(gap_seconds == 0)
    if starts.size == 0:
        raise ValueError(f"no {length_s} s window of trace {trace.name!r} avoids the data gaps")
    return starts


def window_means(trace: Trace, starts: np.ndarray, length_s: int) -> np.ndarray:
    """The mean requests per second of each ``length_s`` window of ``trace`` starting at ``starts``."""
    cumulative = np.concatenate([[0.0], np.cumsum(trace.arrivals)])
    starts = np.asarray(starts, dtype=np.int64)
    return (cumulative[starts + length_s] - cumulative[starts]) / length_s


def draw_window(
    trace: Trace,
    length_s: int,
    rng: np.random.Generator,
    skip_gaps: bool = True,
    starts: np.ndarray | None = None,
) -> Trace:
    """A window of ``length_s`` seconds at a start drawn uniformly by ``rng``.

    ``starts``: the result of ``valid_window_starts`` for these arguments, when the caller keeps it
    (computing it scans the whole trace)."""
    if starts is None:
        starts = valid_window_starts(trace, length_s, skip_gaps)
    return trace.window(int(starts[rng.integers(starts.size)]), length_s)


def trace_digest(trace: Trace) -> str:
    """The SHA-256 of a trace's per-second arrivals (float64): what a row's replay must find again."""
    return hashlib.sha256(np.ascontiguousarray(trace.arrivals, dtype=np.float64).tobytes()).hexdigest()


def trace_file_digest(path: str | Path, column: str | None = None, resolution_s: int = 1) -> str:
    """``trace_digest`` of a trace file as ``load_trace_file`` reads it, computed once per version
    of the file (its modification time and size)."""
    resolved = Path(path).expanduser().resolve()
    stat = resolved.stat()
    return _file_digest(str(resolved), stat.st_mtime_ns, stat.st_size, column, resolution_s)


@lru_cache(maxsize=16)
def _file_digest(path: str, _mtime_ns: int, _size: int, column: str | None, resolution_s: int) -> str:
    return trace_digest(load_trace_file(path, column, resolution_s))


def write_counts(values: object, folder: Path, digest: str) -> Path:
    """Request counts, one per line (each float written exactly), as ``folder/<digest>.txt``: the
    file a trace given as an array is kept in beside the results, named by its content digest."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.txt"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{float(v)!r}\n" for v in np.asarray(values, dtype=np.float64).ravel()))
        tmp.replace(path)
    return path


def from_array(values: object, name: str = "user", resolution_s: int = 1) -> Trace:
    """A trace from request counts: one per second, or one per ``resolution_s`` seconds (60: per-minute
    counts), each then spread over its seconds by ``spread_counts``. The history repeats the first
    second (at a coarser resolution: the seconds of the first bin)."""
    _check_resolution(resolution_s)
    try:
        counts = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trace {name!r}: request counts must be numbers ({exc})") from None
    unit = "per-second counts" if resolution_s == 1 else f"counts per {resolution_s} s"
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"trace {name!r}: expected a non-empty 1-D sequence of {unit}")
    bad = np.flatnonzero(~np.isfinite(counts) | (counts < 0))
    if bad.size:
        where = _position(bad[0], resolution_s)
        raise ValueError(f"trace {name!r}: value {float(counts[bad[0]])!r} at {where} is not a finite count >= 0")
    if resolution_s == 1:
        counts.setflags(write=False)
        return Trace(name, counts, np.full(HISTORY_S, counts[0]), padded_history_s=HISTORY_S)
    arrivals = spread_counts(counts, resolution_s, name)
    first_bin = arrivals[:resolution_s]
    history = np.tile(first_bin, -(-HISTORY_S // resolution_s))[-HISTORY_S:]
    return Trace(name, arrivals, history, padded_history_s=HISTORY_S)


def spread_counts(counts: np.ndarray, resolution_s: int, name: str = "user") -> np.ndarray:
    """Per-second counts from whole request counts per ``resolution_s`` seconds.

    A bin's count ``c`` is spread evenly over its ``r`` seconds in whole requests that sum exactly
    to ``c``: second ``j`` (0-based) gets ``floor((j + 1) c / r) - floor(j c / r)``, that is
    ``floor(c / r)`` or one more, the extra ``c mod r`` requests evenly spaced through the bin
    (largest remainder, with the ties that equal shares leave broken by even spacing). Fractional
    counts are refused: they cannot be spread exactly."""
    _check_resolution(resolution_s)
    counts = np.asarray(counts, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(counts) | (counts < 0) | (counts != np.floor(counts)))
    if bad.size:
        raise ValueError(
            f"trace {name!r}: value {float(counts[bad[0]])!r} at {_position(bad[0], resolution_s)} is not a whole "
            f"number of requests; counts per {resolution_s} s are spread over seconds as whole requests"
        )
    cumulative = (counts.astype(np.int64)[:, None] * np.arange(resolution_s + 1)[None, :]) // resolution_s
    arrivals = np.diff(cumulative, axis=1).reshape(-1).astype(np.float64)
    arrivals.setflags(write=False)
    return arrivals


def _check_resolution(resolution_s: object) -> None:
    if isinstance(resolution_s, bool) or not isinstance(resolution_s, int) or not 1 <= resolution_s <= MAX_RESOLUTION_S:
        raise ValueError(
            f"trace resolution_s (the seconds each count covers) must be an integer in 1..{MAX_RESOLUTION_S}, "
            f"got {resolution_s!r}"
        )


def _position(index: int, resolution_s: int) -> str:
    if resolution_s == 1:
        return f"second {index}"
    return f"bin {index} (seconds {index * resolution_s}-{(index + 1) * resolution_s - 1})"


def load_trace_file(path: str | Path, column: str | None = None, resolution_s: int = 1) -> Trace:
    """Read request counts from a text or CSV file: one per second, or (``resolution_s``) one per
    ``resolution_s`` seconds, spread over its seconds by ``spread_counts``.

    Numbers are separated by white space, commas or new lines (UTF-8, with or without a byte-order
    mark, or UTF-16 with one, as spreadsheet programs and PowerShell save text; LF or CRLF). In a
    ``.csv`` file a first line that is not numeric is a header: ``column`` names the column to read
    (needed when there are several; a single column is read as it is).
    Values may be fractional (rates: the simulators make whole requests of them by rounding the
    running total). Refused, with the file and line named: a table without a header (every line
    of the same two or more values), a blank
    line (a missing count would shift every later second; one new line at the end of the file is
    fine), a value that is not a count (not a number, negative, not finite; at a coarser resolution,
    not whole), a CSV row without a value in the column, a binary file or one in another encoding, and a column
    that looks like timestamps (strictly increasing values above 10^8, e.g. UNIX seconds).
    """
    _check_resolution(resolution_s)
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read trace file {path}: {exc.strerror or exc}") from None
    try:
        text = decode_text(raw)
    except NotTextError as exc:
        raise ValueError(
            f"cannot read trace file {path}, line {exc.line}: not a UTF-8 or UTF-16 text file "
            f"({exc.reason} at byte {exc.byte}); give request counts as text"
        ) from None
    if not text.strip():
        raise ValueError(f"{path}: no request counts found (the file is empty)")
    lines = text.splitlines()
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(
                f"{path}, line {line_no}: blank line; a missing count would shift every later second "
                "(remove the line, or write 0 for no requests)"
            )
    header: list[str] = []
    if path.suffix.lower() == ".csv":
        first = lines[0].replace(",", " ").split()
        if not _is_number(first[0]):
            header = [h.strip() for h in lines[0].split(",")]
    if column is not None and column not in header:
        available = f"its columns: {', '.join(header)}" if header else "it has no header line"
        raise ValueError(f"{path}: no column {column!r} to read the counts from ({available})")
    index = header.index(column) if column is not None else 0
    values: list[float] = []
    for line_no, line in enumerate(lines[1:] if header else lines, start=2 if header else 1):
        if header:
            cells = line.split(",")
            if len(cells) <= index or not cells[index].strip():
                raise ValueError(f"{path}, line {line_no}: no value in column {header[index]!r}")
            tokens = [cells[index].strip()]
        else:
            tokens = line.replace(",", " ").split()
        values.extend(_count(token, path, line_no, resolution_s) for token in tokens)
    if not values:
        raise ValueError(f"{path}: no request counts found (only a header line)")
    if _looks_like_timestamps(values):
        what = f"column {header[index]!r} looks" if header else "the values look"
        hint = " (name the counts column: trace_column=, or --trace-column)" if header else ""
        raise ValueError(f"{path}: {what} like timestamps (increasing, from {values[0]:.0f}), not request counts{hint}")
    if header and column is None and len(header) > 1:
        raise ValueError(
            f"{path}: a CSV of {len(header)} columns ({', '.join(header)}); name the one holding the request "
            "counts with trace_column= (infadapter: --trace-column)"
        )
    widths = {len(line.replace(",", " ").split()) for line in lines}
    if not header and len(lines) > 1 and len(widths) == 1 and min(widths) > 1:
        raise ValueError(
            f"{path}: every line holds {min(widths)} values, a table rather than a sequence of counts; give the "
            "file a header line and name the counts column with trace_column= (infadapter: --trace-column)"
        )
    return from_array(values, name=path.stem, resolution_s=resolution_s)


def _count(token: str, path: Path, line_no: int, resolution_s: int = 1) -> float:
    unit = "per-second request count" if resolution_s == 1 else f"request count per {resolution_s} s"
    try:
        value = float(token)
    except ValueError:
        raise ValueError(f"{path}, line {line_no}: {token!r} is not a number ({unit})") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}, line {line_no}: {token!r} is not finite; counts must be finite numbers >= 0")
    if value < 0:
        raise ValueError(f"{path}, line {line_no}: {token!r} is negative; counts must be >= 0")
    if resolution_s > 1 and not value.is_integer():
        raise ValueError(
            f"{path}, line {line_no}: {token!r} is not a whole number ({unit}); counts at a resolution "
            "above 1 s are spread over seconds as whole requests"
        )
    return value


def _looks_like_timestamps(values: list[float]) -> bool:
    """Strictly increasing and epoch-sized (above 10^8: UNIX seconds since 1973, or milliseconds)."""
    array = np.asarray(values)
    return array.size >= 3 and bool(array.min() > 1e8) and bool(np.all(np.diff(array) > 0))


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def synthetic(kind: str, length_s: int, **params: float) -> Trace:
    """A synthetic trace for tests and what-if runs.

    - ``constant``: ``rate``.
    - ``step``: ``low`` until ``at_s``, then ``high``.
    - ``sine``: ``mean + amplitude * sin(2 pi t / period_s)`` (a diurnal pattern with ``period_s = 86400``).
    - ``bursty``: ``base`` with bursts of ``burst`` extra requests/s lasting ``burst_s`` every ``every_s``.
    - ``spike``: ``base``, times ``factor`` from ``at_s`` for ``hold_s`` seconds.
    - ``ramp``: from ``low`` to ``high`` in a straight line over the whole trace.
    - ``square``: ``low`` and ``high`` in turn, each for ``half_period_s`` seconds (``low`` first).
    """
    defaults: dict[str, dict[str, float]] = {
        "constant": {"rate": 50.0},
        "step": {"low": 30.0, "high": 150.0, "at_s": length_s / 2},
        "sine": {"mean": 100.0, "amplitude": 50.0, "period_s": 600.0},
        "bursty": {"base": 50.0, "burst": 150.0, "burst_s": 20.0, "every_s": 180.0},
        "spike": {"base": 60.0, "factor": 3.0, "at_s": length_s / 2, "hold_s": 120.0},
        "ramp": {"low": 20.0, "high": 200.0},
        "square": {"low": 40.0, "high": 200.0, "half_period_s": 150.0},
    }
    if kind not in defaults:
        raise ValueError(f"unknown synthetic trace kind {kind!r}; valid kinds: {', '.join(SYNTHETIC_KINDS)}")
    unknown = set(params) - set(defaults[kind])
    if unknown:
        raise ValueError(
            f"synthetic {kind!r} trace: unknown parameter(s) {sorted(unknown)}; valid: {sorted(defaults[kind])}"
        )
    if not isinstance(length_s, int) or length_s < 1:
        raise ValueError(f"synthetic trace length_s must be a positive integer, got {length_s!r}")
    p = {**defaults[kind], **params}
    t = np.arange(length_s, dtype=np.float64)
    if kind == "constant":
        arrivals = np.full(length_s, p["rate"])
    elif kind == "step":
        arrivals = np.where(t < p["at_s"], p["low"], p["high"])
    elif kind == "sine":
        arrivals = p["mean"] + p["amplitude"] * np.sin(2 * np.pi * t / p["period_s"])
    elif kind == "bursty":
        arrivals = p["base"] + np.where((t % p["every_s"]) < p["burst_s"], p["burst"], 0.0)
    elif kind == "spike":
        spiking = (t >= p["at_s"]) & (t < p["at_s"] + p["hold_s"])
        arrivals = np.where(spiking, p["base"] * p["factor"], p["base"])
    elif kind == "ramp":
        arrivals = p["low"] + (p["high"] - p["low"]) * t / max(length_s - 1, 1)
    else:
        arrivals = np.where((t // p["half_period_s"]) % 2 == 0, p["low"], p["high"])
    label = ",".join(f"{key}={value:g}" for key, value in sorted(p.items()))
    return from_array(arrivals, name=f"{kind}({label})")
