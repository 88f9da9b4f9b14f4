"""InfAdapter-Gym: adaptive ML inference serving (Salmani et al., EuroMLSys 2023) as a Gymnasium env.

``import infadapter_env`` registers:

- ``InfAdapter-v0``: the paper's world; by default the paper's 21-minute Twitter slice (42 steps).
  Episodes end when the trace ends, so no ``max_episode_steps`` is registered.
- ``InfAdapterShort-v0``: 10-minute windows (20 steps) of the training days, drawn at reset, for
  fast training and tests.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from gymnasium.envs.registration import register, registry

from infadapter_env.config import EnvConfig
from infadapter_env.env import InfAdapterEnv

try:
    __version__ = version("infadapter-gym")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

ENV_IDS = ("InfAdapter-v0", "InfAdapterShort-v0")

if "InfAdapter-v0" not in registry:
    register(
        id="InfAdapter-v0",
        entry_point="infadapter_env.env:InfAdapterEnv",
        vector_entry_point="infadapter_env.vector:InfAdapterVectorEnv",
    )
    register(
        id="InfAdapterShort-v0",
        entry_point="infadapter_env.env:InfAdapterEnv",
        vector_entry_point="infadapter_env.vector:InfAdapterVectorEnv",
        max_episode_steps=20,
        kwargs={"scenario": "train", "episode_length_s": 600},
    )

__all__ = ["ENV_IDS", "EnvConfig", "InfAdapterEnv", "__version__"]
