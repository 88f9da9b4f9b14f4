"""The built wheel in a fresh virtual environment: every module of every installed package imports,
the command runs, and the env with the non-learned agents works on the core dependencies alone.

The fresh environment gets the wheel without dependencies (the machine may be offline); the
dependencies come from this test's environment through a ``.pth`` line, so that what is checked is
the wheel's own contents. "Core dependencies alone" is checked by refusing the extras' imports."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.test_architecture import SOURCES

pytestmark = pytest.mark.slow

IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
names = []
for package in ("infadapter_env", "infadapter_agents", "infadapter_scripts"):
    root = importlib.import_module(package)
    assert root.__file__.startswith(sys.prefix), (package, root.__file__)
    names += [package] + [m.name for m in pkgutil.walk_packages(root.__path__, package + ".")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""

# The extras' packages: refused, as if only the core dependencies were installed.
EXTRAS = (
    "torch",
    "stable_baselines3",
    "sb3_contrib",
    "pandas",
    "matplotlib",
    "scipy",
    "rliable",
    "arch",
    "ray",
    "tqdm",
)
CORE_ONLY = f"""
import sys
class RefuseExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS!r}:
            raise ImportError(f"{{name}} is an extra, not installed here")
sys.meta_path.insert(0, RefuseExtras())
import gymnasium as gym, numpy as np
import infadapter_agents, infadapter_env
env = gym.make("InfAdapter-v0", episode_length_s=120)
for name in ("infadapter", "ms+", "vpa-50", "static-over"):
    agent = infadapter_agents.make(name)
    obs, info = env.reset(seed=0)
    agent.reset(info)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
        done = terminated or truncated
    print(name, round(float(reward), 6))
"""


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; its python."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)], check=True
    )
    purelib = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (purelib / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run(python: Path, code: str, cwd: Path) -> str:
    done = subprocess.run([python, "-c", code], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_the_wheel_holds_every_module_of_the_source_tree(wheel):
    in_wheel = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            assert f"{package}/{path.relative_to(folder).as_posix()}" in in_wheel, path


def test_every_installed_module_imports_in_a_fresh_environment(installed, tmp_path):
    count = int(run(installed, IMPORT_EVERY_MODULE, tmp_path))
    expected = sum(1 for folder in SOURCES.values() for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    assert count == expected


def test_the_command_runs_in_a_fresh_environment(installed, tmp_path):
    done = subprocess.run([installed.parent / "infadapter", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "leaderboard" in done.stdout and "train" in done.stdout


def test_the_env_and_the_non_learned_agents_need_only_the_core_dependencies(installed, tmp_path):
    out = run(installed, CORE_ONLY, tmp_path)
    assert [line.split()[0] for line in out.splitlines()] == ["infadapter", "ms+", "vpa-50", "static-over"]
