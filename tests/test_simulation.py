"""The tick physics against answers computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infadapter_env.simulation import (
    IntervalArrivals,
    _route_ticks,
    deploy,
    empty_state,
    simulate_interval,
)
from tests.conftest import serving_state

RESNET50_8 = [0, 0, 8, 0, 0]  # measured: 78 req/s at SLA 750


def one_interval(values: list[float]) -> IntervalArrivals:
    return IntervalArrivals.batch(np.array([values], dtype=float))[0]


def test_constant_load_under_capacity_has_no_violations(measured):
    state = serving_state(measured, RESNET50_8)
    _, result = simulate_interval(state, one_interval([50.0] * 30), measured)
    assert result.in_slo.tolist() == [0, 0, 1500, 0, 0]
    assert result.late == 0 and result.dropped == 0
    assert result.utilisation[2] == pytest.approx(50 / 78)


def test_load_above_capacity_builds_the_computed_backlog_and_drops(measured):
    # 100 req/s into 78 req/s with a queue bound of 1.25 x 78 = 97.5 (worked by hand in the docs):
    # in SLO 78 + 56 + 34 + 12 in the first four ticks, then the queue is full and 22/s are dropped.
    state = serving_state(measured, RESNET50_8)
    new_state, result = simulate_interval(state, one_interval([100.0] * 30), measured)
    assert result.in_slo.sum() == pytest.approx(180)
    assert result.late == pytest.approx(22 + 44 + 66 + 88 + 87.5 + 78 * 25)
    assert result.dropped == pytest.approx(12.5 + 22 * 25)
    assert result.in_slo.sum() + result.late + result.dropped == pytest.approx(3000)
    assert new_state.backlog.tolist() == pytest.approx([0, 0, 97.5, 0, 0])
    # The queue drains first in the next interval: those requests are served, but late.
    _, after = simulate_interval(new_state, one_interval([0.0] * 30), measured)
    assert after.served.sum() == pytest.approx(97.5) and after.in_slo.sum() == 0


def test_resize_serves_the_old_deployment_until_loaded(measured):
    state = serving_state(measured, RESNET50_8)
    resized = deploy(state, np.array([0, 0, 1, 0, 0]), np.array([0, 0, 16, 0, 0]), measured)
    # ResNet50 loads in 6.82 s: ticks 0..6 still run on 8 cores (78 req/s), ticks 7..29 on 16 (162).
    new_state, result = simulate_interval(resized, one_interval([120.0] * 30), measured)
    assert result.capacity_seconds[2] == pytest.approx(78 * 7 + 162 * 23)
    assert result.in_slo.sum() < 120 * 30
    assert new_state.serving_capacity_rps[2] == 162 and new_state.loading_left_s[2] == 0


def test_a_new_variant_serves_nothing_until_loaded(measured):
    state = deploy(empty_state(5), np.array([0, 0, 1, 0, 0]), np.array(RESNET50_8), measured)
    _, result = simulate_interval(state, one_interval([50.0] * 30), measured)
    # No capacity for 7 ticks (queue bound 0): 350 requests dropped, the rest served in SLO.
    assert result.dropped == pytest.approx(350)
    assert result.in_slo.sum() == pytest.approx(50 * 23)


def test_removing_a_variant_alone_stops_it_at_once_and_loses_its_queue(measured):
    state = serving_state(measured, RESNET50_8, backlog=[0, 0, 40, 0, 0])
    removed = deploy(state, np.zeros(5, dtype=np.int64), np.zeros(5, dtype=np.int64), measured)
    after, result = simulate_interval(removed, one_interval([10.0] * 30), measured)
    assert result.lost == 40 and after.backlog.sum() == 0
    assert result.dropped == 300 and result.served.sum() == 0


def test_a_replaced_variant_serves_until_its_replacement_is_ready(measured):
    # Switch ResNet50 (8 cores) for ResNet152 (12 cores, loads in 8.52 s): make before break.
    state = serving_state(measured, RESNET50_8)
    switched = deploy(state, np.array([0, 0, 0, 0, 1]), np.array([0, 0, 0, 0, 12]), measured)
    after, result = simulate_interval(switched, one_interval([30.0] * 30), measured)
    assert result.late == 0 and result.dropped == 0
    assert result.in_slo.tolist() == pytest.approx([0, 0, 30 * 9, 0, 30 * 21])
    assert after.serving_capacity_rps.tolist() == [0, 0, 0, 0, 39]


def test_accuracy_first_routing_fills_the_most_accurate_variant(measured):
    state = serving_state(measured, [4, 0, 0, 0, 12])  # resnet18: 90 req/s, resnet152: 39 req/s
    _, result = simulate_interval(state, one_interval([60.0] * 30), measured)
    assert result.in_slo.tolist() == pytest.approx([21 * 30, 0, 0, 0, 39 * 30])


def test_proportional_routing_splits_by_capacity(measured):
    state = serving_state(measured, [4, 0, 0, 0, 12])
    _, result = simulate_interval(state, one_interval([60.0] * 30), measured, dispatcher="proportional")
    assert result.in_slo.tolist() == pytest.approx([60 * 30 * 90 / 129, 0, 0, 0, 60 * 30 * 39 / 129])


@settings(max_examples=200, deadline=None)
@given(
    cores=st.lists(st.sampled_from([0, 2, 3, 5, 8, 13]), min_size=5, max_size=5),
    arrivals=st.lists(st.floats(0, 400), min_size=30, max_size=30),
    dispatcher=st.sampled_from(["accuracy_first", "proportional"]),
)
def test_closed_form_fast_path_equals_the_tick_loop(measured, cores, arrivals, dispatcher):
    state = serving_state(measured, cores)
    interval = one_interval(arrivals)
    _, result = simulate_interval(state, interval, measured, dispatcher)
    in_slo, served, _queue, late, dropped = _route_ticks(
        interval.per_tick, state.target_capacity_rps, state.backlog, dispatcher, 1.25
    )
    np.testing.assert_allclose(result.in_slo, in_slo, atol=1e-6)
    np.testing.assert_allclose(result.served, served, atol=1e-6)
    np.testing.assert_allclose(result.late + result.dropped, late + dropped, atol=1e-6)
    # Conservation: every arrival is in SLO, late, or dropped.
    assert result.in_slo.sum() + result.late + result.dropped == pytest.approx(sum(arrivals), abs=1e-6)
