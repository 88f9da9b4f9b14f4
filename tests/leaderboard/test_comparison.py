"""Agents scored against the reference per beta (``infadapter_env.leaderboard.comparison``)."""

from __future__ import annotations

import json
from dataclasses import replace

from infadapter_env.leaderboard import comparison
from infadapter_env.leaderboard.protocol import get_protocol
from infadapter_scripts import eval_learned


def test_an_agent_is_compared_with_the_reference_and_its_rows_are_reused(tmp_path, monkeypatch):
    base = get_protocol("validation")
    tiny = replace(base, scenarios={"val1": base.scenarios["val1"]}, seeds=(0,))
    monkeypatch.setattr(comparison, "get_protocol", lambda name: tiny if name == "validation" else None)
    options = comparison.ComparisonOptions(
        agents=["static-over"], protocol="validation", betas=[0.05], out=str(tmp_path)
    )
    text = comparison.compare_agents(options, eval_learned.agent_factory, "the command")
    assert "| static-over | 0.05 |" in text and "Command: `the command`" in text
    folder = tmp_path / tiny.name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["command"] == "the command"
    assert {r["agent"] for r in summary["rows"]} == {"static-over", "infadapter"}
    assert (folder / "rows-static-over.csv").is_file() and (folder / "rows-infadapter.csv").is_file()
    again = comparison.compare_agents(options, lambda name: None, "again")  # rows reused: no agent made
    assert again.split("\n", 2)[2] == text.split("\n", 2)[2]


def test_the_paired_difference_is_the_window_bootstraps():
    """3 windows x 2 seeds, windows of different difficulty: ``a`` is 0.01 above the reference on
    every episode (neither moves with the seed), so every resample's paired difference is 0.01; ``b``
    is below it on every window."""
    import numpy as np
    import pandas as pd

    rows = []
    for seed in range(2):
        for w, base in enumerate((0.5, 0.6, 0.9)):
            common = {"beta": 0.05, "scenario": f"w{w}", "seed": seed, "slo_violation_pct": 1.0, "mean_cores": 8.0}
            rows.append(common | {"agent": "infadapter", "objective": base})
            rows.append(common | {"agent": "a", "objective": base + 0.01})
            rows.append(common | {"agent": "b", "objective": base - 0.05 - 0.001 * seed})
    out = {e["agent"]: e for e in comparison.compare(pd.DataFrame(rows), "infadapter")}
    a = out["a"]
    assert np.allclose([a["paired_difference"], a["paired_low"], a["paired_high"]], 0.01, atol=1e-12, rtol=0)
    assert a["at_least_matches"]
    assert out["b"]["paired_high"] < 0 and not out["b"]["at_least_matches"]
    assert np.isclose(out["infadapter"]["objective"], np.mean([0.5, 0.6, 0.9]))
    assert out["infadapter"]["ci_low"] < out["infadapter"]["objective"] < out["infadapter"]["ci_high"]
    assert "paired_difference" not in out["infadapter"] and out["a"]["episodes"] == 6
