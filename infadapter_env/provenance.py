"""What a result records about where it came from: versions and the git commit."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def is_source_checkout() -> bool:
    """Whether this package runs from its own repository (not from an installed wheel, whose parent
    folder is site-packages, possibly inside some other git repository)."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "agents" / "__init__.py").is_file()


def git_commit() -> str:
    """The commit of the source tree (with ``+dirty`` if it has uncommitted changes), or ``unknown``
    (also when installed from a wheel: the package version identifies it then)."""
    if not is_source_checkout():
        return "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def relative_to_repo(path: Path) -> str:
    """``path`` relative to the repository when inside it (recorded paths then travel with the repo)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("infadapter-gym", "gymnasium", "numpy", "pulp", "torch", "stable-baselines3"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out
