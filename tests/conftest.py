"""Shared fixtures: the repository root and the measured profile."""

from __future__ import annotations

from pathlib import Path

import pytest

import infadapter_env  # noqa: F401  (registers the environments)
from infadapter_env.profiles import CapacityProfile, load_profile

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def measured() -> CapacityProfile:
    return load_profile(750, "measured")
