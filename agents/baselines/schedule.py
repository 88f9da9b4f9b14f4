"""A scripted deployment schedule: given deployments from given decision intervals on.

Not a contender (it does not look at the load): a tool to play a chosen reconfiguration, for
example on real servers and then in both simulators (``infadapter sim2real``):

    infadapter sim2real --agent infadapter_agents.baselines.schedule:ScheduleAgent \\
        --agent-options 'plan=0:resnet18@1;8:resnet34@1' ...

``plan``: phases separated by ``;``, each ``<first interval>:<deployment>``, a deployment being
``<variant>@<cores>`` joined by ``+`` (one replica of each); the first phase starts at interval 0.
The env's rules apply to every change (a variant switched for another keeps serving until its
replacement is ready: make before break).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from infadapter_agents.base import Agent


def parse_plan(plan: str, variants: tuple[str, ...]) -> list[tuple[int, tuple[int, ...]]]:
    """``plan`` as (first interval, cores per variant) phases, in order; a ``ValueError`` names the
    phase that cannot be read."""
    phases: list[tuple[int, tuple[int, ...]]] = []
    for text in (part.strip() for part in plan.split(";")):
        start, sep, deployment = text.partition(":")
        if not sep or not start.strip().isdigit():
            raise ValueError(f"plan phase {text!r}: expected <first interval>:<variant>@<cores>[+...]")
        cores = [0] * len(variants)
        for item in deployment.split("+"):
            name, at, count = item.strip().partition("@")
            if name not in variants:
                raise ValueError(f"plan phase {text!r}: unknown variant {name!r}; variants: {', '.join(variants)}")
            if not at or not count.isdigit() or int(count) < 1:
                raise ValueError(f"plan phase {text!r}: {item.strip()!r} needs @<cores>, a positive whole number")
            cores[variants.index(name)] = int(count)
        phases.append((int(start), tuple(cores)))
    starts = [start for start, _ in phases]
    if starts[0] != 0 or starts != sorted(set(starts)):
        raise ValueError(f"plan {plan!r}: phases must start at interval 0 and in increasing order")
    return phases


class ScheduleAgent(Agent):
    seed_independent = True  # the plan alone decides

    def __init__(self, plan: str) -> None:
        self.plan, self.name = plan, "schedule"

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.phases = parse_plan(self.plan, self.settings.variants)
        self.interval = 0

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        self.cores = [cores for start, cores in self.phases if start <= self.interval][-1]
        self.interval += 1
        return self.settings.action([1 if c else 0 for c in self.cores], self.cores)

    def decision_info(self) -> dict[str, Any]:
        return {"cores": list(self.cores)}
