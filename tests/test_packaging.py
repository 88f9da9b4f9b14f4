"""The project works from a built wheel, not only from the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

CHECK = """
import gymnasium as gym, infadapter_env, numpy as np
from infadapter_env.world.shipped_data import data_file
path = data_file("traces", "workload.txt.xz")
assert "site" in str(path) or "wheel_root" in str(path), path
env = gym.make("InfAdapter-v0")
env.reset(seed=0)
obs, reward, *_ = env.step(np.array([0, 0, 8, 0, 12]))
import infadapter_agents
for name in ("infadapter", "ppo", "ppo-forecast"):
    agent = infadapter_agents.make(name)
    obs, info = env.reset(seed=0)
    agent.reset(info)
    env.step(agent.act(obs, info))
print("ok", path)
"""


def test_wheel_carries_the_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "infadapter_env/data/traces/workload.txt.xz",
        "infadapter_env/data/traces/README.md",
        "infadapter_env/data/profiles/capacity_result_Feb_21.csv",
        "infadapter_env/data/profiles/variants.csv",
        "infadapter_env/data/profiles/latency_quantiles.npz",
        "infadapter_env/py.typed",
        "infadapter_scripts/cli.py",
        "infadapter_env/leaderboard/__init__.py",
        "infadapter_env/leaderboard/protocol.py",
        "infadapter_agents/__init__.py",
        "infadapter_agents/py.typed",
        "infadapter_agents/forecast/weights/lstm_forecaster.npz",
        "infadapter_agents/checkpoints/ppo/agent.json",
        "infadapter_agents/checkpoints/ppo/seed0/model.zip",
        "infadapter_agents/checkpoints/ppo-weights/seed2/vecnormalize.pkl",
        "infadapter_agents/checkpoints/ppo-forecast/seed1/meta.json",
        "infadapter_scripts/leaderboard.py",
    ):
        assert needed in names, needed


def test_wheel_claims_no_generic_top_level_name_and_carries_its_licence(wheel):
    archive = zipfile.ZipFile(wheel)
    top_level = {name.split("/")[0] for name in archive.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"infadapter_env", "infadapter_agents", "infadapter_scripts"}
    metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    text = archive.read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())


@pytest.mark.slow
def test_a_users_own_agents_folder_does_not_collide(wheel, tmp_path):
    project = tmp_path / "project"  # the user's own git repository, with the package installed inside it
    root = project / ".venv" / "site-packages"
    zipfile.ZipFile(wheel).extractall(root)
    (project / "agents").mkdir(parents=True)
    (project / "agents" / "__init__.py").write_text("MINE = True\n")
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    code = (
        "import agents, infadapter_agents; from infadapter_env.provenance import git_commit; "
        "assert agents.MINE; assert git_commit() == 'unknown', git_commit(); "
        "print(infadapter_agents.make('ppo').name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={"PYTHONPATH": f"{project}:{root}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ppo"


@pytest.mark.slow
def test_env_runs_from_the_unpacked_wheel_outside_the_repo(wheel, tmp_path):
    root = tmp_path / "wheel_root"
    zipfile.ZipFile(wheel).extractall(root)
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=tmp_path,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert str(root) in done.stdout


@pytest.mark.slow
def test_the_env_runs_where_numba_can_cache_nothing(tmp_path):
    """A read-only install with no writable home: numba finds no folder for its disk cache and
    refuses to cache; the kernels then compile in the process, with one warning saying what to do.
    (Simulated with a cache locator that applies to no file.)"""
    script = (
        "import gymnasium as gym, numpy as np, infadapter_env\n"
        "env = gym.make('InfAdapter-v0')\n"
        "env.reset(seed=0)\n"
        "print(env.step(np.array([12, 0, 0, 0, 8]))[1])\n"
    )
    environment = {"PATH": "/usr/bin:/bin", "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("numba finds no writable folder") == 1, done.stderr
    assert "NUMBA_CACHE_DIR" in done.stderr
    import gymnasium as gym
    import numpy as np

    env = gym.make("InfAdapter-v0")
    env.reset(seed=0)
    assert float(done.stdout.strip()) == pytest.approx(env.step(np.array([12, 0, 0, 0, 8]))[1], rel=1e-12)
