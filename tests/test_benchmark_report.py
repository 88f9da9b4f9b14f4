"""The performance page is made from a benchmark run's JSON (not a benchmark itself)."""

from __future__ import annotations

import json

from tests.benchmarks.report import main, page


def test_the_page_holds_every_benchmark_and_its_figures(tmp_path):
    run = {
        "machine_info": {"python_version": "3.11.7", "cpu": {"brand_raw": "Some CPU", "count": 2}},
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "datetime": "2026-12-05T12:00:00",
        "benchmarks": [
            {"name": "test_step[steady]", "extra_info": {"ratio": 2.5, "case": "steady"}, "stats": {"median": 2e-5}},
            {"name": "test_vector", "extra_info": {"batched_steps_per_s": 123456.7}, "stats": {"median": 0.5}},
        ],
    }
    text = page(run)
    assert "| `test_step[steady]` | ratio 2.5, case steady | 0.02 ms |" in text
    assert "batched_steps_per_s 123,457" in text and "Some CPU, 2 logical cores" in text and "0123456789ab" in text
    (tmp_path / "bench.json").write_text(json.dumps(run))
    assert main([str(tmp_path / "bench.json"), str(tmp_path / "performance.md")]) == 0
    assert (tmp_path / "performance.md").read_text() == text
    assert main([str(tmp_path / "missing.json"), str(tmp_path / "x.md")]) == 2
