"""The project works from a built wheel, not only from the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

CHECK = """
import gymnasium as gym, infadapter_env, numpy as np
from infadapter_env.datafiles import data_file
path = data_file("traces", "workload.txt.xz")
assert "site" in str(path) or "wheel_root" in str(path), path
env = gym.make("InfAdapter-v0")
env.reset(seed=0)
obs, reward, *_ = env.step(np.array([0, 0, 8, 0, 12]))
import agents
for name in ("infadapter", "ppo"):
    agent = agents.make(name)
    obs, info = env.reset(seed=0)
    agent.reset(info)
    env.step(agent.act(obs, info))
print("ok", path)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("dist")
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


def test_wheel_carries_the_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "infadapter_env/data/traces/workload.txt.xz",
        "infadapter_env/data/traces/README.md",
        "infadapter_env/data/profiles/capacity_result_Feb_21.csv",
        "infadapter_env/data/profiles/variants.csv",
        "agents/__init__.py",
        "agents/weights/lstm_forecaster.pt",
        "agents/checkpoints/ppo/policy.zip",
        "agents/checkpoints/maskable-ppo/vecnormalize.pkl",
        "scripts/cli.py",
    ):
        assert needed in names, needed


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
