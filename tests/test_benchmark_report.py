"""The performance page is made from a benchmark run's JSON (not a benchmark itself)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from tests.benchmarks.report import main, page


def test_the_page_holds_every_benchmark_and_its_figures(tmp_path):
    run = {
        "machine_info": {"python_version": "3.11.7", "cpu": {"brand_raw": "Some CPU", "count": 2}},
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "datetime": "2026-12-05T12:00:00",
        "benchmarks": [
            {
                "name": "test_step[steady]",
                "extra_info": {"ratio": 2.5, "case": "steady", "targets": ["ratio 2.5 (target <= 3): met"]},
                "stats": {"median": 2e-5},
            },
            {
                "name": "test_vector",
                "extra_info": {"batched_steps_per_s": 123456.7, "targets": ["a (target >= 2): NOT met", "b: met"]},
                "stats": {"median": 0.5},
            },
        ],
    }
    text = page(run)
    assert "| `test_step[steady]` | ratio 2.5 (target <= 3): met | ratio 2.5, case steady | 0.02 ms |" in text
    assert "| a (target >= 2): NOT met<br>b: met |" in text and "Targets missed in this run: 1." in text
    assert "batched_steps_per_s 123,457" in text and "Some CPU, 2 logical cores" in text and "0123456789ab" in text
    (tmp_path / "bench.json").write_text(json.dumps(run))
    assert main([str(tmp_path / "bench.json"), str(tmp_path / "performance.md")]) == 0
    assert (tmp_path / "performance.md").read_text() == text
    assert main([str(tmp_path / "missing.json"), str(tmp_path / "x.md")]) == 2


def test_a_missed_target_is_recorded_before_the_benchmark_fails():
    from tests.benchmarks.targets import at_least, at_most, check

    bench = SimpleNamespace(extra_info={})
    check(bench, at_most("x", 1.0, 2.0))
    try:
        check(bench, at_least("speedup", 14.0, 20.0), at_most("episode (s)", 0.02, 0.05))
    except AssertionError as error:
        assert "speedup 14 (target >= 20): NOT met" in str(error) and "episode" not in str(error)
    else:
        raise AssertionError("a missed target passed")
    assert bench.extra_info["targets"] == [
        "x 1 (target <= 2): met",
        "speedup 14 (target >= 20): NOT met",
        "episode (s) 0.02 (target <= 0.05): met",
    ]
