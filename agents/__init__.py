"""Policies for InfAdapter-v0, behind one registry.

    import infadapter_agents
    infadapter_agents.names()                       # every registered agent
    agent = infadapter_agents.make("infadapter", solver="ilp")
    agent.reset(reset_info); action = agent.act(observation, info)

Each agent's module docstring gives its source, parameters and simplifications.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infadapter_agents.base import Agent, EnvSettings

_FACTORIES: dict[str, Callable[..., Agent]] = {}


def register(name: str, factory: Callable[..., Agent]) -> None:
    if name in _FACTORIES:
        raise ValueError(f"agent {name!r} is registered already")
    _FACTORIES[name] = factory


def names() -> list[str]:
    """Every registered agent name, in registration order."""
    return list(_FACTORIES)


def make(name: str, **options: Any) -> Agent:
    """A new agent by name; ``options`` go to its constructor."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; valid agents: {', '.join(names())}") from None
    agent = factory(**options)
    agent.name = name
    return agent


def _register_builtin() -> None:
    from infadapter_agents.autopilot import AutopilotAgent
    from infadapter_agents.hpa import HPAAgent
    from infadapter_agents.infadapter import InfAdapterAgent, MSPlusAgent, oracle_agent
    from infadapter_agents.learned import learned_agent
    from infadapter_agents.mark import MArkAgent
    from infadapter_agents.static import OVER_RATE_RPS, UNDER_RATE_RPS, StaticAgent
    from infadapter_agents.vpa import VPAAgent

    register("infadapter", InfAdapterAgent)
    register("ms+", MSPlusAgent)
    register("oracle", oracle_agent)
    for depth in (18, 34, 50, 101, 152):
        register(f"vpa-{depth}", lambda depth=depth, **kw: VPAAgent(variant=depth, **kw))
    register("hpa", HPAAgent)
    register("mark", MArkAgent)
    register("autopilot", AutopilotAgent)
    register("static-over", lambda **kw: StaticAgent(**({"rate_rps": OVER_RATE_RPS} | kw)))
    register("static-under", lambda **kw: StaticAgent(**({"rate_rps": UNDER_RATE_RPS} | kw)))
    for learned in ("ppo", "maskable-ppo", "a2c"):
        register(learned, learned_agent(learned))


_register_builtin()

__all__ = ["Agent", "EnvSettings", "make", "names", "register"]
