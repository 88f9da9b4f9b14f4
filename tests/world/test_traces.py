"""Traces: the shipped Twitter data, scenarios, windows, user files and synthetic loads."""

from __future__ import annotations

import codecs
import hashlib
import lzma

import numpy as np
import pytest

from infadapter_env.world import traces
from infadapter_env.world.shipped_data import data_file

WORKLOAD_SHA256 = "2285592cbc653db1e495f4587edd38af43915b4724cc83ee4c3d13346e1e6055"


def test_shipped_trace_is_the_provenance_file():
    with lzma.open(data_file("traces", "workload.txt.xz"), "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == WORKLOAD_SHA256


def test_full_trace_statistics_match_provenance():
    full = traces.load_twitter()
    assert full.size == 1_899_061
    assert full.mean() == pytest.approx(63.60, abs=0.01)
    assert int((full == 0).sum()) == 37_899
    assert not full.flags.writeable


def test_paper_slice_matches_the_paper():
    paper = traces.scenario("paper")
    assert paper.length_s == 1260
    assert paper.start_s == 15 * 86_400 + 82 * 60
    assert paper.arrivals.sum() == 121_697
    assert (paper.arrivals.min(), paper.arrivals.max()) == (27, 274)
    assert paper.history.size == traces.HISTORY_S


def test_train_and_test_split_by_day():
    train, test = traces.scenario("train"), traces.scenario("test")
    assert train.length_s == 14 * 86_400
    assert test.start_s == 14 * 86_400
    assert train.length_s + test.length_s == 1_899_061


def test_unknown_scenario_lists_valid_ones():
    with pytest.raises(ValueError, match="valid scenarios: paper, train, test, full"):
        traces.scenario("day3")


def test_windows_skip_the_daily_gap_unless_asked():
    train = traces.scenario("train")
    gaps = traces.gap_mask(train.arrivals)
    assert gaps[84_661 : 84_661 + 1_739].all()
    rng = np.random.default_rng(0)
    for _ in range(200):
        window = traces.draw_window(train, 3_600, rng)
        assert not traces.gap_mask(window.arrivals).any()
        assert window.history.size == traces.HISTORY_S
        np.testing.assert_array_equal(window.arrivals, train.arrivals[window.start_s : window.start_s + 3_600])
    starts_all = traces.valid_window_starts(train, 3_600, skip_gaps=False)
    starts_clean = traces.valid_window_starts(train, 3_600)
    assert starts_clean.size < starts_all.size
    assert 84_661 in starts_all and 84_661 not in starts_clean


@pytest.mark.parametrize("start", [0, 1, 250, 599, 600, 601, 5_000])
def test_window_history_is_the_seconds_before_it(start):
    source = traces.synthetic("sine", 6_000, period_s=77.0)
    source = traces.Trace("s", source.arrivals, np.arange(600.0), padded_history_s=100)
    joined = np.concatenate([source.history, source.arrivals])
    window = source.window(start, 300)
    begin = 600 + start
    np.testing.assert_array_equal(window.history, joined[max(begin - 600, 0) : begin])
    np.testing.assert_array_equal(window.arrivals, joined[begin : begin + 300])
    assert window.padded_history_s == max(100 - max(begin - 600, 0), 0)


def test_same_generator_seed_gives_the_same_window():
    test = traces.scenario("test")
    first = traces.draw_window(test, 600, np.random.default_rng(7))
    again = traces.draw_window(test, 600, np.random.default_rng(7))
    assert first.start_s == again.start_s


def test_rate_multiplier_scales_arrivals_and_history():
    paper = traces.scenario("paper")
    doubled = paper.scaled(2.0)
    np.testing.assert_array_equal(doubled.arrivals, 2 * paper.arrivals)
    np.testing.assert_array_equal(doubled.history, 2 * paper.history)
    with pytest.raises(ValueError, match="rate multiplier must be a finite number > 0"):
        paper.scaled(-1)


@pytest.mark.parametrize("kind", traces.SYNTHETIC_KINDS)
def test_synthetic_traces_have_the_asked_length(kind):
    trace = traces.synthetic(kind, 900)
    assert trace.length_s == 900 and trace.arrivals.min() >= 0


def test_synthetic_shapes():
    step = traces.synthetic("step", 100, low=10, high=90, at_s=40)
    assert step.arrivals[39] == 10 and step.arrivals[40] == 90
    bursty = traces.synthetic("bursty", 200, base=5, burst=20, burst_s=10, every_s=100)
    assert bursty.arrivals[:10].tolist() == [25] * 10 and bursty.arrivals[10] == 5
    with pytest.raises(ValueError, match="unknown parameter"):
        traces.synthetic("constant", 10, level=3)
    with pytest.raises(ValueError, match="valid kinds"):
        traces.synthetic("sawtooth", 10)


def test_spike_ramp_and_square_traces():
    spike = traces.synthetic("spike", 600, base=50, factor=3, at_s=100, hold_s=120)
    assert spike.arrivals[99] == 50 and spike.arrivals[100] == 150 and spike.arrivals[219] == 150
    assert spike.arrivals[220] == 50 and spike.arrivals.sum() == 50 * 600 + 100 * 120
    ramp = traces.synthetic("ramp", 101, low=20, high=220)
    assert ramp.arrivals[0] == 20 and ramp.arrivals[-1] == 220 and ramp.arrivals[50] == pytest.approx(120)
    square = traces.synthetic("square", 400, low=40, high=200, half_period_s=150)
    assert square.arrivals[149] == 40 and square.arrivals[150] == 200 and square.arrivals[300] == 40


def test_user_trace_files(tmp_path):
    text = tmp_path / "counts.txt"
    text.write_text("1 2 3\n4\n5 ")
    assert traces.load_trace_file(text).arrivals.tolist() == [1, 2, 3, 4, 5]
    csv = tmp_path / "counts.csv"
    csv.write_text("requests,other\n7,1\n8,1\n")
    assert traces.load_trace_file(csv, "requests").arrivals.tolist() == [7, 8]
    with pytest.raises(ValueError, match=r"a CSV of 2 columns \(requests, other\); name the one"):
        traces.load_trace_file(csv)  # which column holds the counts is not guessed
    table = tmp_path / "table.txt"
    table.write_text("0 40\n1 41\n2 39\n")
    with pytest.raises(ValueError, match=r"every line holds 2 values, a table rather than a sequence"):
        traces.load_trace_file(table)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1 2\n3 x\n", r"line 2: 'x' is not a number"),
        ("1 2\n3 4\n", r"every line holds 2 values"),
        ("1\n-4\n", r"line 2: '-4' is negative"),
        ("1 nan\n", r"line 1: 'nan' is not finite"),
        ("", "no request counts found"),
        ("\n  \n", "no request counts found"),
    ],
)
def test_malformed_trace_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        traces.load_trace_file(path)
    assert str(path) in str(info.value)


def test_missing_trace_file_is_reported(tmp_path):
    with pytest.raises(ValueError, match="cannot read trace file"):
        traces.load_trace_file(tmp_path / "nope.txt")


def test_arrays_with_bad_values_are_rejected():
    with pytest.raises(ValueError, match="at second 1"):
        traces.from_array([1.0, float("inf")])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        traces.from_array([])


def test_trace_files_in_common_encodings_load(tmp_path):
    path = tmp_path / "windows.txt"
    path.write_bytes("\ufeff3\r\n4\r\n5\r\n".encode())  # UTF-8 with a byte-order mark, CRLF line ends
    assert traces.load_trace_file(path).arrivals.tolist() == [3, 4, 5]
    binary = tmp_path / "counts.bin"
    binary.write_bytes(bytes([0x89, 0x50, 0x4E, 0x47, 0x00, 0x01]))
    with pytest.raises(ValueError, match=r"counts.bin, line 1: not a UTF-8 or UTF-16 text file \(.* at byte 0\)"):
        traces.load_trace_file(binary)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"1\n2\n3 \xe9\n")  # Latin-1, not UTF-8: the third line
    with pytest.raises(ValueError, match=r"latin.txt, line 3: not a UTF-8 or UTF-16 text file \(.* at byte 6\)"):
        traces.load_trace_file(latin)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_utf16_trace_files_load_as_their_utf8_twins(tmp_path, encoding, suffix):
    """Spreadsheet programs and PowerShell save text as UTF-16 with a byte-order mark."""
    text = "requests,hour\r\n3,0\r\n4.5,0\r\n0,1\r\n" if suffix == ".csv" else "3 4.5\r\n0\r\n12\r\n"
    twin = tmp_path / f"utf8{suffix}"
    twin.write_text(text, encoding="utf-8", newline="")
    bom = {"utf-16": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[encoding]
    path = tmp_path / f"wide{suffix}"
    path.write_bytes(bom + text.encode(encoding))  # Python's "utf-16" writes the machine's mark itself
    column = "requests" if suffix == ".csv" else None
    expected = traces.load_trace_file(twin, column=column).arrivals
    assert expected.tolist() == ([3, 4.5, 0] if suffix == ".csv" else [3, 4.5, 0, 12])
    np.testing.assert_array_equal(traces.load_trace_file(path, column=column).arrivals, expected)


def test_utf16_without_a_byte_order_mark_and_broken_utf16_are_refused(tmp_path):
    bare = tmp_path / "bare.txt"
    bare.write_bytes("3\n4\n".encode("utf-16-le"))  # no mark: NUL bytes, not text
    with pytest.raises(ValueError, match=r"^cannot read trace file .*bare.txt, line 1: not a UTF-8 or UTF-16 text"):
        traces.load_trace_file(bare)
    odd = tmp_path / "odd.txt"
    odd.write_bytes(codecs.BOM_UTF16_LE + "3\n4\n".encode("utf-16-le") + b"\x00")  # a truncated code unit
    with pytest.raises(ValueError, match=r"odd.txt, line 3: not a UTF-8 or UTF-16 text file") as caught:
        traces.load_trace_file(odd)
    assert "\n" not in str(caught.value)


def test_csv_column_by_name_and_timestamps_refused(tmp_path):
    import gymnasium as gym

    path = tmp_path / "load.csv"
    path.write_text("timestamp,requests\n1700000000,7\n1700000001,9\n1700000002,8\n")
    with pytest.raises(ValueError, match=r"column 'timestamp' looks like timestamps .*name the counts column"):
        traces.load_trace_file(path)
    assert traces.load_trace_file(path, "requests").arrivals.tolist() == [7, 9, 8]
    with pytest.raises(
        ValueError, match=r"no column 'rps' to read the counts from \(its columns: timestamp, requests\)"
    ):
        traces.load_trace_file(path, "rps")
    env = gym.make("InfAdapter-v0", trace=str(path), trace_column="requests", interval_s=1)
    assert env.unwrapped.source.arrivals.tolist() == [7, 9, 8]
    plain = tmp_path / "stamps.txt"
    plain.write_text("1700000000\n1700000001\n1700000005\n")
    with pytest.raises(ValueError, match="the values look like timestamps"):
        traces.load_trace_file(plain)


def test_shipped_trace_has_no_blank_lines():
    with lzma.open(data_file("traces", "workload.txt.xz"), "rt") as handle:
        lines = handle.read().splitlines()
    assert lines and all(line.strip() for line in lines)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("inner.txt", "1\n\n2\n", 2),
        ("spaces.txt", "1\n  \n2", 2),
        ("end.txt", "1\n2\n\n", 3),  # one new line ends the file; a second one is a blank line
        ("crlf.txt", "1\r\n\r\n2\r\n", 2),
        ("header.csv", "requests\n7\n\n8\n", 3),
    ],
)
def test_a_blank_line_is_an_error_naming_file_and_line(tmp_path, name, content, line):
    path = tmp_path / name
    path.write_bytes(content.encode())
    with pytest.raises(ValueError, match=rf"{name}, line {line}: blank line") as info:
        traces.load_trace_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", ["1\n2\n", "1\n2", "1\r\n2\r\n"])
def test_one_new_line_at_the_end_is_fine(tmp_path, content):
    path = tmp_path / "counts.txt"
    path.write_bytes(content.encode())
    assert traces.load_trace_file(path).arrivals.tolist() == [1, 2]


def test_a_csv_row_without_a_value_in_the_column_is_an_error(tmp_path):
    path = tmp_path / "load.csv"
    path.write_text("time,requests\n0,7\n1,\n2,8\n")
    with pytest.raises(ValueError, match=r"load.csv, line 3: no value in column 'requests'"):
        traces.load_trace_file(path, "requests")
    path.write_text("time,requests\n0,7\n1\n")
    with pytest.raises(ValueError, match=r"load.csv, line 3: no value in column 'requests'"):
        traces.load_trace_file(path, "requests")


def test_millisecond_timestamps_are_refused_as_counts(tmp_path):
    path = tmp_path / "load.csv"
    path.write_text("ts_ms,requests\n1700000000000,7\n1700000001000,9\n1700000002000,8\n")
    with pytest.raises(ValueError, match=r"column 'ts_ms' looks like timestamps"):
        traces.load_trace_file(path)


def test_per_minute_counts_are_spread_over_their_seconds():
    minutes = [100, 0, 60, 59, 1, 7]
    trace = traces.from_array(minutes, resolution_s=60)
    assert trace.length_s == 360
    seconds = trace.arrivals.reshape(6, 60)
    assert seconds.sum(axis=1).tolist() == minutes  # exactly each minute's count
    assert np.all(seconds == np.floor(seconds))  # whole requests
    for count, row in zip(minutes, seconds, strict=True):
        assert set(row.tolist()) <= {count // 60, count // 60 + 1}  # as whole requests allow
    extra = np.flatnonzero(seconds[0] == 2)  # 100 = 60 x 1 + 40: the 40 extra requests are spread out
    assert extra.size == 40 and np.diff(extra).max() <= 2
    # No past: the history repeats the first minute, second by second.
    np.testing.assert_array_equal(trace.history, np.tile(seconds[0], 10))
    assert trace.padded_history_s == traces.HISTORY_S


def test_spread_counts_sum_exactly_at_any_resolution():
    rng = np.random.default_rng(0)
    for resolution_s in (2, 7, 30, 60, 3600):
        counts = rng.integers(0, 5 * resolution_s, size=50)
        seconds = traces.spread_counts(counts, resolution_s).reshape(50, resolution_s)
        np.testing.assert_array_equal(seconds.sum(axis=1), counts)
        assert np.all(seconds.max(axis=1) - seconds.min(axis=1) <= 1)


def test_resolution_one_is_the_per_second_trace():
    values = [3.0, 4.5, 0.0]
    plain, explicit = traces.from_array(values), traces.from_array(values, resolution_s=1)
    np.testing.assert_array_equal(plain.arrivals, explicit.arrivals)
    np.testing.assert_array_equal(explicit.history, np.full(traces.HISTORY_S, 3.0))


def test_per_minute_trace_files(tmp_path):
    path = tmp_path / "per_minute.csv"
    path.write_text("minute,requests\n0,120\n1,90\n")
    trace = traces.load_trace_file(path, "requests", resolution_s=60)
    assert trace.length_s == 120 and trace.arrivals[:60].sum() == 120 and trace.arrivals[60:].sum() == 90
    path.write_text("minute,requests\n0,120\n1,90.5\n")
    with pytest.raises(ValueError, match=r"per_minute.csv, line 3: '90.5' is not a whole number"):
        traces.load_trace_file(path, "requests", resolution_s=60)
    with pytest.raises(ValueError, match=r"at bin 1 \(seconds 60-119\) is not a whole number"):
        traces.from_array([120, 90.5], resolution_s=60)


@pytest.mark.parametrize("resolution_s", [0, -60, 1.5, True, "60", 86_401])
def test_a_bad_resolution_is_refused(tmp_path, resolution_s):
    path = tmp_path / "counts.txt"
    path.write_text("1\n")
    with pytest.raises(ValueError, match=r"resolution_s \(the seconds each count covers\) must be an integer"):
        traces.load_trace_file(path, resolution_s=resolution_s)
    with pytest.raises(ValueError, match=r"resolution_s"):
        traces.from_array([1], resolution_s=resolution_s)


def test_an_env_plays_a_per_minute_trace():
    import gymnasium as gym

    trace = traces.from_array([600, 1200, 900], resolution_s=60)
    env = gym.make("InfAdapter-v0", trace=trace, interval_s=30)
    env.reset(seed=0)
    arrivals = [env.step(env.action_space.sample())[4]["arrivals"] for _ in range(6)]
    assert [arrivals[k] + arrivals[k + 1] for k in (0, 2, 4)] == [600, 1200, 900]
    # The same as a gym.make setting, for a file or an array; refused where counts are per second already.
    env = gym.make("InfAdapter-v0", trace=[600, 1200, 900], trace_resolution_s=60, interval_s=60)
    env.reset(seed=0)
    assert [env.step(env.action_space.sample())[4]["arrivals"] for _ in range(3)] == [600, 1200, 900]
    with pytest.raises(ValueError, match="trace_resolution_s applies to a trace given as a file or an array"):
        gym.make("InfAdapter-v0", scenario="paper", trace_resolution_s=60)


def test_scenarios_come_from_a_registry(monkeypatch):
    monkeypatch.setattr(traces, "_SCENARIOS", dict(traces._SCENARIOS))
    assert traces.SCENARIOS == traces.scenario_names() == ("paper", "train", "test", "full")
    traces.register_scenario("flat", lambda: traces.synthetic("constant", 600, rate=40))
    assert traces.scenario_names()[-1] == "flat"
    assert traces.scenario("flat").arrivals.tolist() == [40.0] * 600
    import gymnasium as gym

    assert gym.make("InfAdapter-v0", scenario="flat").unwrapped.n_steps == 20  # gym.make knows it too
    with pytest.raises(ValueError, match="valid scenarios: paper, train, test, full, flat"):
        traces.scenario("day3")
    with pytest.raises(ValueError, match="'paper' is registered already"):
        traces.register_scenario("paper", lambda: traces.scenario("test"))
    traces.register_scenario("broken", lambda: [1, 2, 3])  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="scenario 'broken': its builder returned list, not a Trace"):
        traces.scenario("broken")
    with pytest.raises(ValueError, match="non-empty string"):
        traces.register_scenario("", lambda: traces.scenario("paper"))
