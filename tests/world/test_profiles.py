"""Capacity profiles: the measured table, the paper's linear fit, and their validation."""

from __future__ import annotations

import numpy as np
import pytest

from infadapter_env.world.profiles import load_profile, shipped_world


def test_variants_are_ordered_by_accuracy_with_paper_constants():
    variants = shipped_world().variants
    assert [v.name for v in variants] == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert [v.accuracy for v in variants] == [0.69758, 0.73314, 0.7613, 0.77374, 0.78312]
    assert [v.load_time_s for v in variants] == [6.44, 6.79, 6.82, 7.77, 8.52]


def test_measured_profile_reads_the_csv_values():
    profile = load_profile(750, "measured")
    assert profile.th(2, 8) == 78  # resnet50 at 8 cores, SLA 750
    assert profile.th(4, 12) == 39  # resnet152 at 12 cores
    assert profile.th(0, 20) == 473  # resnet18 at 20 cores (censored by the search bound)
    assert profile.th(1, 0) == 0
    assert load_profile(500, "measured").th(0, 1) == 15


def test_linear_fit_is_least_squares_on_fit_cores_times_safety_factor():
    profile = load_profile(750, "linear_fit")
    cores = np.array([1, 2, 4, 8, 16])
    resnet18 = np.array([19, 43, 90, 190, 385])
    slope, intercept = np.polyfit(cores, resnet18, 1)
    assert profile.th(0, 10) == pytest.approx(0.8 * (slope * 10 + intercept))
    assert profile.th(0, 0) == 0
    assert np.all(profile.per_replica_rps >= 0)


def test_capacity_of_replicas_multiplies():
    profile = load_profile(750, "measured")
    capacity = profile.capacity_rps(np.array([0, 0, 2, 0, 1]), np.array([0, 0, 4, 0, 8]))
    assert capacity.tolist() == [0, 0, 72, 0, 27]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slo_ms": 600}, "slo_ms must be one of"),
        ({"model": "magic"}, "capacity model must be one of"),
        ({"min_cores": 0}, "min_cores"),
        ({"safety_factor": 1.5}, "safety_factor"),
    ],
)
def test_bad_profile_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_profile(**kwargs)


def test_th_rejects_cores_outside_the_profile():
    with pytest.raises(ValueError, match=r"cores must be in 0\.\.20"):
        load_profile().th(0, 21)
