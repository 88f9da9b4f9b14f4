"""Shared fixtures: the repository root, the measured profile, the built wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


@pytest.fixture(scope="session")
def wheel(tmp_path_factory, repo_root):
    """The wheel built from a copy of the sources (setuptools' build/ cache could carry stale files)."""
    out = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("source") / "infadapter-gym"
    skip = shutil.ignore_patterns(".venv", "build", "results", "runs", ".git", "*.egg-info", "__pycache__", ".*cache")
    shutil.copytree(repo_root, source, ignore=skip)
    repo_root = source
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(repo_root),
        ],
        check=True,
    )
    return next(out.glob("infadapter_gym-*.whl"))
