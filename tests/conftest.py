"""Shared fixtures: the repository root and the measured profile."""

from __future__ import annotations

from pathlib import Path

import pytest

import infadapter_env  # noqa: F401  (registers the environments)
from infadapter_env.world.profiles import CapacityProfile, load_profile

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def measured() -> CapacityProfile:
    return load_profile(750, "measured")


@pytest.fixture
def isolated_registry(monkeypatch):
    """The agent registry as it is, restored after the test (specs and ``register`` add to it)."""
    from infadapter_env.core import agent_registry

    agent_registry.names()  # the built-in agents are in the table before it is copied
    monkeypatch.setattr(agent_registry, "_FACTORIES", dict(agent_registry._FACTORIES))
    return agent_registry
