"""Variants as the autoscalers see them: a variant by name or depth, one variant's deployment, and
the CPU usage derived from the observation.

Usage is derived from the servers' busy fraction (physics v1: completed requests over what the
servers can complete, ``mu``): a variant whose workers were busy a fraction ``u`` of the last
interval used ``u x cores x replicas`` cores (one worker per core). Like a CPU-throttled pod, usage
can never exceed the allocation, so an overloaded variant reports its full allocation, not its
demand (``agents.vpa`` also offers the ``busy`` signal).
"""

from __future__ import annotations

import numpy as np

from infadapter_agents.base import PlanningView
from infadapter_env.core.observation import ObservationLayout
from infadapter_env.world.profiles import UnsupportedWorld, World


def variant_index(variant: str | int, world: World) -> int:
    """Index of a variant of ``world`` given by name or arch (``"resnet50"``, ``"50"`` or ``50``);
    a variant the world lacks is refused with its variants named."""
    for index, v in enumerate(world.variants):
        if str(variant) in (v.name, v.arch):
            return index
    valid = ", ".join(f"{v.name} ({v.arch})" for v in world.variants)
    raise UnsupportedWorld(f"unknown variant {variant!r} in this world ({world.variants_path}); its variants: {valid}")


def replica_scaler_variant(name: str, variant: str | int, settings: PlanningView) -> int:
    """The index of the one variant a horizontal scaler (agent ``name``) adds replicas of; an env
    whose actions are not replica counts is refused."""
    index = variant_index(variant, settings.world)
    if settings.action_mode != "replicas":
        raise ValueError(f"{name} scales replicas: it needs action_mode='replicas', not {settings.action_mode!r}")
    return index


def cpu_usage_cores(observation: np.ndarray, variant: int, layout: ObservationLayout) -> float:
    """Cores the variant used last interval (utilisation x allocated cores)."""
    cores = float(observation[layout.CORES][variant]) * float(observation[layout.REPLICAS][variant])
    return float(observation[layout.UTILISATION][variant]) * cores


def one_variant(variant: int, value: int, n_variants: int) -> list[int]:
    """``value`` for ``variant``, 0 for every other of ``n_variants`` variants."""
    return [value if v == variant else 0 for v in range(n_variants)]
