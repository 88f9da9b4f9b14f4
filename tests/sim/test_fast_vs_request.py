"""The fast simulator against the request-level reference, episode by episode (a subset of
``infadapter validate-fast``, whose full table is in docs/validation.md)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from infadapter_env.leaderboard.fast_validation import (
    P99_TOLERANCE,
    VIOLATION_TOLERANCE_PTS,
    compare,
    compare_fixed,
    fixed_episode,
    synthetic_scenarios,
    validation_scenarios,
    violation_pct,
)
from infadapter_env.sim.fast import server_tables
from infadapter_env.sim.fast_kernels import _deficit_below, _reflected_below
from infadapter_env.world.profiles import load_profile

# a2c and ppo: learned policies run deployments no planner would (four variants on 2-4 cores each,
# queues full for minutes), which the fast model once missed by up to 3.2 points and 21 % P99
# Known misses of physics v3 (docs/validation.md lists them; issue 26): strict, so that a fix shows.
KNOWN_MISS = pytest.mark.xfail(
    strict=True, reason="physics v3 known miss: near-critical multi-replica episode (docs/validation.md)"
)


@pytest.mark.parametrize(
    "agent", ["infadapter", "vpa-50", "static-under", pytest.param("hpa", marks=KNOWN_MISS), "a2c", "ppo"]
)
def test_fast_model_matches_the_reference_on_the_paper_slice_and_a_test_window(agent):
    rows = [compare(agent, scenario) for scenario in validation_scenarios(1, seed=7)]
    for row in rows:
        assert row["holds"], row
        assert abs(row["violation_diff_pts"]) <= VIOLATION_TOLERANCE_PTS, row
        assert row["p99_median_rel_error"] <= P99_TOLERANCE, row
        assert row["p99_intervals"] >= 30
        # two different simulators: never equal to the last digit over whole episodes (this caught a
        # comparison of the request-level simulator with itself once the protocol's default became it)
        assert any(e > 0 for e in json.loads(row["p99_rel_errors"]))


@pytest.mark.parametrize(
    ("variant", "cores", "replicas", "load"),
    [
        (0, 2, 5, 1.2),  # five ResNet18 replicas just over saturation: physics v1 was 15 points too high
        (2, 4, 10, 1.5),  # ten ResNet50 replicas deep in overload
        pytest.param(2, 4, 2, 1.2, marks=KNOWN_MISS),  # two replicas at the knee: P99 32 % off under v3
        (4, 8, 1, 1.5),  # one ResNet152 replica in overload
        (0, 2, 10, 0.95),  # ten replicas below capacity
    ],
)
def test_fast_model_holds_on_fixed_multi_replica_deployments(variant, cores, replicas, load):
    row = compare_fixed(variant, cores, replicas, load)
    assert abs(row["violation_diff_pts"]) <= VIOLATION_TOLERANCE_PTS, row
    assert row["p99_median_rel_error"] <= P99_TOLERANCE, row


@pytest.mark.parametrize(
    ("variant", "cores", "replicas", "load"), [(2, 4, 5, 1.2), (2, 4, 10, 1.5), (4, 8, 5, 0.95), (0, 2, 5, 1.5)]
)
def test_fast_model_holds_with_replicas_taken_in_turn(variant, cores, replicas, load):
    row = compare_fixed(variant, cores, replicas, load, "round_robin")
    assert abs(row["violation_diff_pts"]) <= VIOLATION_TOLERANCE_PTS, row
    assert row["p99_median_rel_error"] <= P99_TOLERANCE, row


JUST_PAST_SATURATION = 1.027  # x what the server completes when saturated


def resnet18_2_cores_mu() -> float:
    """What ResNet18 on 2 cores completes per second when saturated (49.0 req/s)."""
    return float(server_tables(load_profile(750, "measured")).service_rps[0, 2])


def test_replicas_in_overload_are_not_one_replica_at_their_summed_load():
    """R replicas at R times one replica's overload violate less than the one replica: each
    receives a random share of every second's requests, so its queue falls below its bound at
    times (the reference says so, and so must the fast model)."""
    rate_one = JUST_PAST_SATURATION * resnet18_2_cores_mu()
    one = violation_pct(fixed_episode("fast", 0, 2, 1, rate_one, 0))
    ten = violation_pct(fixed_episode("fast", 0, 2, 10, 10 * rate_one, 0))
    reference_ten = violation_pct(fixed_episode("request", 0, 2, 10, 10 * rate_one, 0))
    assert ten < one - 15
    assert abs(ten - reference_ten) < 6


def test_replicas_taken_in_turn_share_no_luck():
    """Just past saturation, replicas that each receive a random share of the requests spend time
    below their bound; taken in turn each receives exactly its share and stays full: both
    simulators see the difference (ten ResNet18 replicas at 1.027 x what they complete)."""
    rate = 10 * JUST_PAST_SATURATION * resnet18_2_cores_mu()
    for simulator in ("fast", "request"):
        shared = violation_pct(fixed_episode(simulator, 0, 2, 10, rate, 0, "random"))
        in_turn = violation_pct(fixed_episode(simulator, 0, 2, 10, rate, 0, "round_robin"))
        assert in_turn > shared + 15, simulator


def test_a_synthetic_spike_is_validated_like_a_window(tmp_path):
    spike = synthetic_scenarios(tmp_path)[0]
    row = compare("infadapter", spike, "quota")
    assert row["holds"], row
    assert row["p99_intervals"] >= 40  # (an interval in which a variant still loads can serve nothing)


@pytest.mark.parametrize(("scale", "sd"), [(20.0, 3.0), (3.0, 4.0), (10.0, 0.0), (0.0, 5.0)])
def test_a_full_queues_deficit_is_an_exponentially_modified_normal(scale, sd):
    rng = np.random.default_rng(0)
    draws = rng.exponential(scale, 200_000) if scale > 0 else np.zeros(200_000)
    draws = draws + rng.normal(0.0, sd, draws.size) if sd > 0 else draws
    for y in (-5.0, 0.0, 2.0, 10.0, 30.0):
        expected = float(np.mean(draws <= y))
        assert _deficit_below(y, scale, sd) == pytest.approx(expected, abs=0.005), y


def test_a_queue_below_its_bound_is_a_normal_reflected_at_both_ends():
    mean, sd, bound = 6.0, 4.0, 20.0

    def below(x: float) -> float:
        return _reflected_below(x, mean, sd, bound, True, True) - _reflected_below(0.0, mean, sd, bound, True, True)

    assert below(bound) == pytest.approx(1.0, abs=1e-3)  # the images keep the mass inside [0, bound]
    # at 0 the image doubles the density: P(X <= x) for small x is twice the normal's density times x
    assert below(0.1) / 0.1 == pytest.approx(2 * stats.norm.pdf(mean / sd) / sd, rel=0.02)
    # and so at the bound
    assert (below(bound) - below(bound - 0.1)) / 0.1 == pytest.approx(
        2 * stats.norm.pdf((bound - mean) / sd) / sd, rel=0.02
    )
    # far from either barrier it is the normal itself, images left out or not
    far = _reflected_below(8.0, 10.0, 1.0, 40.0, False, False) - _reflected_below(0.0, 10.0, 1.0, 40.0, False, False)
    assert far == pytest.approx(stats.norm.cdf(-2.0), abs=1e-9)
    assert math.isclose(below(0.0), 0.0, abs_tol=1e-12)
