"""The fast simulator's compiled interval (``sim.fast_kernels.interval``) called directly: its
grouped inputs, and the errors it raises for inputs it cannot simulate."""

from __future__ import annotations

import numpy as np
import pytest

from infadapter_env.sim import fast_kernels as kernels
from infadapter_env.sim.cluster import ClusterState, empty_state, loaded_state, no_quotas
from infadapter_env.sim.fast import server_tables, simulate_interval
from infadapter_env.world.profiles import load_profile


def outputs(n_env: int = 1, n_var: int = 5) -> tuple[np.ndarray, ...]:
    """``kernels.IntervalOutputs`` for ``n_env`` environments, as a plain tuple."""
    return (
        np.empty((2, n_env, n_var), dtype=np.int64),
        np.empty((3, n_env, n_var)),
        np.empty((5, n_env, n_var)),
        np.empty((7, n_env)),
    )


def call_interval(state: ClusterState, per_tick: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
    tables = server_tables(load_profile(750, "measured"))
    quotas = no_quotas(*state.cores.shape)
    dispatch = kernels.Dispatch(kernels.ACCURACY_FIRST, 1.25, kernels.RANDOM_REPLICA, quotas.current, quotas.planned)
    kernels.interval(tuple(state), per_tick, tuple(dispatch), *tables.kernel_tables, out)


def test_interval_writes_its_outputs_and_refuses_outputs_of_the_wrong_shape():
    out = outputs()
    call_interval(empty_state(1, 5), np.full((1, 30), 10.0), out)
    assert out[3][0, 0] == 300  # arrivals
    wrong = (*out[:2], np.empty((5, 1, 4)), out[3])
    with pytest.raises(ValueError, match="an output array has the wrong shape"):
        call_interval(empty_state(1, 5), np.full((1, 30), 10.0), wrong)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("loading_nan", "loading_left_s holds NaN"),
        ("cores_outside", "cores are outside the profile's 0..C"),
        ("replicas_negative", "replicas < 0"),
        ("arrivals_negative", "per_tick holds a count that is negative"),
        ("arrivals_nan", "per_tick holds a count that is negative, infinite or NaN"),
    ],
)
def test_interval_names_what_it_cannot_simulate(change, message):
    """The pieces of the interval report these and the kernel raises them, for the second
    environment as for the first."""
    cores = np.array([[12, 0, 0, 0, 8], [12, 0, 0, 0, 8]], dtype=np.int64)
    state = loaded_state((cores > 0).astype(np.int64), cores)
    per_tick = np.full((2, 30), 50.0)
    if change == "loading_nan":
        state = state._replace(loading_left_s=np.array([[0.0] * 5, [0.0, np.nan, 0.0, 0.0, 0.0]]))
    elif change == "cores_outside":
        state = state._replace(cores=np.array([[12, 0, 0, 0, 8], [12, 0, 0, 0, 99]]))
    elif change == "replicas_negative":
        state = state._replace(replicas=np.array([[1, 0, 0, 0, 1], [-1, 0, 0, 0, 1]]))
    elif change == "arrivals_negative":
        per_tick[1, 7] = -1.0
    else:
        per_tick[1, 29] = np.nan
    with pytest.raises(ValueError, match=message):
        simulate_interval(state, per_tick, server_tables(load_profile(750, "measured")))


def test_interval_refuses_arrays_of_other_types():
    state = empty_state(1, 5)
    with pytest.raises(TypeError, match="must be int64 arrays"):
        simulate_interval(
            state._replace(cores=state.cores.astype(np.float64)),
            np.zeros((1, 30)),
            server_tables(load_profile(750, "measured")),
        )
