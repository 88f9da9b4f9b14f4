"""Shared fixtures: the repository root and small helpers for building simulation states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import infadapter_env  # noqa: F401  (registers the environments)
from infadapter_env.profiles import CapacityProfile, load_profile
from infadapter_env.simulation import ClusterState

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def measured() -> CapacityProfile:
    return load_profile(750, "measured")


def serving_state(profile: CapacityProfile, cores: list[int], backlog: list[float] | None = None) -> ClusterState:
    """A state in which ``cores`` (one replica each) has finished loading and serves."""
    cores_arr = np.array(cores, dtype=np.int64)
    replicas = (cores_arr > 0).astype(np.int64)
    capacity = profile.capacity_rps(replicas, cores_arr)
    n = len(cores)
    return ClusterState(
        replicas, cores_arr, capacity, capacity.copy(), np.zeros(n), np.array(backlog or [0.0] * n, dtype=float)
    )
