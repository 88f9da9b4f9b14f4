"""Agents scored against the reference per beta (``infadapter_env.leaderboard.comparison``)."""

from __future__ import annotations

import json
from dataclasses import replace

from infadapter_env.leaderboard import comparison
from infadapter_env.leaderboard.protocol import get_protocol
from infadapter_scripts import eval_learned


def test_an_agent_is_compared_with_the_reference_and_its_rows_are_reused(tmp_path, monkeypatch):
    base = get_protocol("default")
    tiny = replace(base, scenarios={"test1": base.scenarios["test1"]}, seeds=(0,))
    monkeypatch.setattr(comparison, "held_out_protocol", lambda windows=30: tiny)
    options = comparison.ComparisonOptions(
        agents=["static-over"], protocol="held-out-30", betas=[0.05], out=str(tmp_path)
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
