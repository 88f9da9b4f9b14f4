"""The metric columns of a row (``core.rollout.episode_metrics``) on hand-made infos."""

from __future__ import annotations

import pytest

from infadapter_env.core.rollout import SLO_MET_LATE_SHARE, episode_metrics


def info(arrivals: float, violated: float, **extra: float) -> dict:
    """One step's info with the keys ``episode_metrics`` reads."""
    out = {
        "arrivals": arrivals,
        "violated": violated,
        "dropped": 0.0,
        "aa_effective": 0.7,
        "aa_planned": 0.7,
        "cores": 8,
        "lc": 0.0,
        "reward": 0.6,
        "latency_p99_ms": 300.0,
        "replicas": [0, 0, 1, 0, 0],
        "cores_per_replica": [0, 0, 8, 0, 0],
    }
    return out | extra


def test_the_share_of_intervals_that_met_the_p99_slo():
    # 1 % late meets it (at most), 1.1 % does not; an interval without arrivals is not counted.
    infos = [info(1000, 10), info(1000, 11), info(0, 0), info(500, 0), info(200, 3)]
    metrics = episode_metrics(infos, {"slo_ms": 750})
    assert SLO_MET_LATE_SHARE == 0.01
    assert metrics["intervals_slo_met_pct"] == pytest.approx(100 * 2 / 4)
    assert metrics["slo_violation_pct"] == pytest.approx(100 * 24 / 2700)
    assert episode_metrics([info(0, 0)], {"slo_ms": 750})["intervals_slo_met_pct"] == 100.0
