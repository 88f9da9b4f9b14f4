"""The robustness report (``infadapter_env.leaderboard.robustness``) on a hand-made toy."""

from __future__ import annotations

from infadapter_env.leaderboard.robustness import report
from infadapter_env.leaderboard.store import to_frame
from tests.leaderboard.test_aggregate import row


def board(flaky_attainment: float) -> list[dict]:
    """3 windows x 2 seeds: the oracle 0.75, ``good`` 0.72 and InfAdapter 0.70 (every interval
    meeting the SLO 97 % of the time), ``flaky`` 0.68 with the given attainment."""
    rows = []
    for scenario in ("w1", "w2", "w3"):
        for seed in (0, 1):
            for agent, objective, met in (
                ("oracle", 0.75, 97.0),
                ("good", 0.72, 97.0),
                ("infadapter", 0.70, 97.0),
                ("flaky", 0.68, flaky_attainment),
            ):
                rows.append(row(agent, 0.05, scenario, seed, objective=objective, intervals_slo_met_pct=met))
    return rows


def test_a_conclusion_holds_only_when_it_is_the_same_at_every_speed():
    boards = {0.85: to_frame(board(80.0)), 1.0: to_frame(board(97.0))}
    text, counts = report(boards, {}, reps=200, command="toy")
    assert "| good | meets, above | meets, above | yes |" in text
    assert "| flaky | misses, below | meets, below | against InfAdapter only |" in text
    assert "| infadapter | meets, reference | meets, reference | yes |" in text
    # Four contenders x two conclusions; only flaky's SLO group moves with the speed.
    assert counts == {"hold": 7, "flip": 1}
    assert "- flaky at beta 0.05 (SLO: 0.85: misses, below; 1: meets, below)" in text
