"""InfAdapter-Gym: adaptive ML inference serving (Salmani et al., EuroMLSys 2023) as a Gymnasium env.

The package's layers, lowest first (``docs/architecture.md``): ``world`` (profiles, traces,
arrivals, shipped data), ``sim`` (the cluster state and both simulators), ``core`` (settings, the
step pipeline, objective, observation, the scalar and batched envs, the agent registry),
``serving`` (profiler, live mode) and ``leaderboard`` (the harness). Agents live in
``infadapter_agents``, the command line in ``infadapter_scripts``.

``import infadapter_env`` registers:

- ``InfAdapter-v0``: the paper's world; by default the paper's 21-minute Twitter slice (42 steps).
  Episodes end when the trace ends, so no ``max_episode_steps`` is registered.
- ``InfAdapterShort-v0``: 10-minute windows (20 steps) of the training days, drawn at reset, for
  fast training and tests.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from gymnasium.envs.registration import register, registry

try:
    __version__ = version("infadapter-gym")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

ENV_IDS = ("InfAdapter-v0", "InfAdapterShort-v0")

if "InfAdapter-v0" not in registry:
    register(
        id="InfAdapter-v0",
        entry_point="infadapter_env.core.scalar_env:InfAdapterEnv",
        vector_entry_point="infadapter_env.core.vector_env:InfAdapterVectorEnv",
    )
    register(
        id="InfAdapterShort-v0",
        entry_point="infadapter_env.core.scalar_env:InfAdapterEnv",
        vector_entry_point="infadapter_env.core.vector_env:InfAdapterVectorEnv",
        max_episode_steps=20,
        kwargs={"scenario": "train", "episode_length_s": 600},
    )

# The env classes load on first use (they bring numpy's and numba's compiled kernels), so that
# ``import infadapter_env`` stays light: registration only (tests/test_architecture.py checks it).
_LAZY = {"EnvSettings": "infadapter_env.core.settings", "InfAdapterEnv": "infadapter_env.core.scalar_env"}


# Former names, still answered for one release with a DeprecationWarning.
_RENAMED = {"EnvConfig": "EnvSettings"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        import warnings

        warnings.warn(f"infadapter_env.{name} is now infadapter_env.{_RENAMED[name]}", DeprecationWarning, stacklevel=2)
        name = _RENAMED[name]
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'infadapter_env' has no attribute {name!r}")


__all__ = ["ENV_IDS", "EnvSettings", "InfAdapterEnv", "__version__"]
