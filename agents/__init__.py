"""Policies for InfAdapter-v0, behind one registry (``infadapter_env.core.agent_registry``).

    import infadapter_agents
    infadapter_agents.names()                       # every registered agent
    agent = infadapter_agents.make("infadapter", solver="ilp")
    agent.reset(reset_info); action = agent.act(observation, info)

Agents of one's own join the registry (``register``, a ``"module:attribute"`` spec, or an entry
point of the group ``infadapter.agents``) as ``infadapter_env.core.agent_registry`` describes, and
the leaderboard plays them like the built-in ones (``infadapter leaderboard --agents NAME``).

A factory is any callable that returns an Agent (a class included); ``make``'s options go to it.
Each agent's module docstring gives its source, parameters and simplifications. This package's
own agents reach the registry through ``builtin_agents``, which the registry calls on first use.
"""

from __future__ import annotations

from collections.abc import Callable

from infadapter_agents.base import Agent, PlanningView
from infadapter_env.core.agent_registry import (
    ENTRY_POINT_GROUP,
    install,
    make,
    names,
    register,
    registrations,
    resolve,
)


def builtin_agents() -> dict[str, Callable[..., Agent]]:
    """The built-in agents by name, in the order the leaderboard lists them: the registry's provider
    (entry point ``builtin`` of ``infadapter.agent_providers``, ``pyproject.toml``)."""
    from infadapter_agents.baselines.autopilot import AutopilotAgent
    from infadapter_agents.baselines.hpa import HPAAgent
    from infadapter_agents.baselines.mark import MArkAgent
    from infadapter_agents.baselines.static import OVER_RATE_RPS, UNDER_RATE_RPS, StaticAgent
    from infadapter_agents.baselines.vpa import VPAAgent
    from infadapter_agents.learned.agent import SHIPPED, learned_agent
    from infadapter_agents.planning.infadapter import InfAdapterAgent, MSPlusAgent, oracle_agent

    builtin: dict[str, Callable[..., Agent]] = {
        "infadapter": InfAdapterAgent,
        "ms+": MSPlusAgent,
        "oracle": oracle_agent,
    }
    for depth in (18, 34, 50, 101, 152):
        builtin[f"vpa-{depth}"] = lambda depth=depth, **kw: VPAAgent(variant=depth, **kw)
    builtin |= {"hpa": HPAAgent, "mark": MArkAgent, "autopilot": AutopilotAgent}
    builtin["static-over"] = lambda **kw: StaticAgent(**({"rate_rps": OVER_RATE_RPS} | kw))
    builtin["static-under"] = lambda **kw: StaticAgent(**({"rate_rps": UNDER_RATE_RPS} | kw))
    for learned in SHIPPED:
        builtin[learned] = learned_agent(learned)
    return builtin


__all__ = [
    "ENTRY_POINT_GROUP",
    "Agent",
    "PlanningView",
    "builtin_agents",
    "install",
    "make",
    "names",
    "register",
    "registrations",
    "resolve",
]
