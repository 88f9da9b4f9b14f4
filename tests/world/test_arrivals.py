"""Arrival processes inside each second (the request-level simulator's request times)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infadapter_env.world.arrivals import request_times, whole_counts


def test_whole_counts_keep_the_running_total():
    rates = np.array([0.4, 0.4, 0.4, 2.6, 0.0, 1.5])
    counts = whole_counts(rates)
    assert counts.dtype.kind == "i"
    np.testing.assert_array_equal(np.cumsum(counts), np.rint(np.cumsum(rates)))


def test_uniform_spreads_each_second_evenly():
    times = request_times(np.array([2, 0, 4]), "uniform", np.random.default_rng(0))
    np.testing.assert_allclose(times, [0.25, 0.75, 2.125, 2.375, 2.625, 2.875])


def test_poisson_is_seeded_sorted_and_stays_in_its_second():
    counts = np.array([50, 0, 80, 3])
    one = request_times(counts, "poisson", np.random.default_rng(7))
    two = request_times(counts, "poisson", np.random.default_rng(7))
    np.testing.assert_array_equal(one, two)
    assert np.all(np.diff(one) >= 0)
    np.testing.assert_array_equal(np.bincount(np.floor(one).astype(int), minlength=4), counts)


@given(
    counts=st.lists(st.integers(0, 40), min_size=1, max_size=60),
    start_s=st.sampled_from([0.0, 1234.0, 2.0**40]),
    seed=st.integers(0, 2**32 - 1),
)
def test_poisson_times_are_each_seconds_offsets_in_order(counts, start_s, seed):
    """What ``request_times`` draws: one uniform offset per request in the order of the seconds, each
    second's offsets sorted (a sort by second, then offset; far from 0 the sums may round up to the
    next second's start, which keeps them in order)."""
    counts = np.array(counts)
    seconds = np.repeat(np.arange(counts.size, dtype=np.float64), counts) + start_s
    offsets = np.random.default_rng(seed).random(seconds.size)
    expected = seconds + offsets[np.lexsort((offsets, seconds))]
    times = request_times(counts, "poisson", np.random.default_rng(seed), start_s)
    np.testing.assert_array_equal(times, expected)


def test_loadgen_sends_a_second_in_about_its_first_two_thirds():
    # Exponential gaps of mean 1 / (1.5 n): the k-th of n requests comes on average at k / (1.5 n) s,
    # the last at 2/3 s. Busy seconds alternate with empty ones so that spill-over cannot interleave.
    counts = np.tile([100, 0], 2000)
    times = request_times(counts, "loadgen", np.random.default_rng(1))
    offsets = (times - 2 * np.floor(times / 2)).reshape(2000, 100)
    assert np.mean(offsets[:, -1]) == pytest.approx(2 / 3, abs=0.02)
    assert np.mean(offsets) == pytest.approx(np.mean(np.arange(1, 101)) / 150, abs=0.01)
    assert offsets.max() < 2.0


@pytest.mark.parametrize("counts", [[1], [0, 0]])
def test_unknown_process_is_refused(counts):
    with pytest.raises(ValueError, match="arrivals must be one of"):
        request_times(np.array(counts), "bursty", np.random.default_rng(0))
