"""Where the shipped data lives, in a source checkout and in an installed wheel.

The repository keeps its data in the top-level folders ``traces/`` and ``profiles/`` (each with a
README). A wheel maps those folders into ``infadapter_env/data/`` (see ``pyproject.toml``), so the
package finds them wherever it is installed.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_CANDIDATE_ROOTS = (_PACKAGE_DIR / "data", _PACKAGE_DIR.parent)


def data_file(folder: str, name: str) -> Path:
    """Path of a shipped data file, e.g. ``data_file("traces", "workload.txt.xz")``."""
    for root in _CANDIDATE_ROOTS:
        path = root / folder / name
        if path.is_file():
            return path
    searched = ", ".join(str(root / folder / name) for root in _CANDIDATE_ROOTS)
    raise FileNotFoundError(f"shipped data file {folder}/{name} not found; looked in: {searched}")
