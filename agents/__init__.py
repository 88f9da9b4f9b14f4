"""Policies for InfAdapter-v0, behind one registry.

    import infadapter_agents
    infadapter_agents.names()                       # every registered agent
    agent = infadapter_agents.make("infadapter", solver="ilp")
    agent.reset(reset_info); action = agent.act(observation, info)

Agents of one's own join the registry three ways, and the leaderboard plays them like the built-in
ones (``infadapter leaderboard --agents NAME``):

- ``register("greedy", Greedy)`` in the running process (a script, a notebook);
- a ``"module:attribute"`` spec naming a factory: ``make("mypkg.policies:make_greedy")``. The agent's
  name is the spec, or the factory's own ``name`` attribute where it has one (an Agent subclass that
  sets ``name``, or ``factory.name = "greedy"`` on a function);
- an installed package's entry point in the group ``infadapter.agents``
  (``greedy = "mypkg.policies:make_greedy"`` under ``[project.entry-points."infadapter.agents"]``);
  the entry point's name is the agent's, and its module is imported when the agent is first made.

A factory is any callable that returns an Agent (a class included); ``make``'s options go to it.
Each agent's module docstring gives its source, parameters and simplifications.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from infadapter_agents.base import Agent, EnvSettings

ENTRY_POINT_GROUP = "infadapter.agents"

_FACTORIES: dict[str, Callable[..., Agent]] = {}
_BUILTIN: set[str] = set()
# The entry points found on a sys.path (looked up again when sys.path changes).
_ENTRY_POINTS: tuple[tuple[str, ...], dict[str, EntryPoint]] = ((), {})


def register(name: str, factory: Callable[..., Agent], replace: bool = False) -> None:
    """Register ``factory`` (a callable returning an Agent) under ``name``; ``replace=True`` replaces
    an agent of that name (re-running a notebook cell that defines and registers a class)."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"an agent's name is a non-empty string without surrounding spaces, got {name!r}")
    if not callable(factory):
        raise ValueError(f"agent {name!r}: the factory must be callable (a class or function returning an Agent)")
    if not replace and (name in _FACTORIES or name in _entry_points()):
        raise ValueError(f"agent {name!r} is registered already (register(..., replace=True) replaces it)")
    _FACTORIES[name] = factory


def names() -> list[str]:
    """Every registered agent name: the built-in ones, those registered here, then the entry points'."""
    return [*_FACTORIES, *(name for name in _entry_points() if name not in _FACTORIES)]


def resolve(name: str) -> str:
    """The registered name of an agent given by name or by ``"module:attribute"`` spec; a spec (or
    an entry point) is loaded and registered here on first use. A clear ``ValueError`` names what is
    wrong with a name that is none of these."""
    if name in _FACTORIES:
        return name
    point = _entry_points().get(name)
    if point is not None:
        _FACTORIES[name] = _load_entry_point(point)
        return name
    if ":" not in name:
        raise ValueError(
            f"unknown agent {name!r}; valid agents: {', '.join(names())} (or a module:attribute spec naming a factory)"
        )
    factory = _load_spec(name)
    own = getattr(factory, "name", None)
    label = own if isinstance(own, str) and own.strip() and own != Agent.name else name
    if _FACTORIES.get(label, factory) is not factory:
        raise ValueError(f"agent spec {name!r} names its agent {label!r}, the name of another registered agent")
    _FACTORIES[label] = factory
    return label


def make(name: str, **options: Any) -> Agent:
    """A new agent by name or ``"module:attribute"`` spec; ``options`` go to its factory."""
    label = resolve(name)
    agent = _FACTORIES[label](**options)
    if not callable(getattr(agent, "act", None)) or not callable(getattr(agent, "reset", None)):
        raise ValueError(f"agent {label!r}: its factory returned {agent!r}, which has no reset(info) and act(...)")
    agent.name = label
    return agent


def registrations() -> dict[str, Callable[..., Agent]]:
    """The agents registered in this process beyond the built-in ones (by ``register``, a spec, or a
    loaded entry point). Other processes do not see them: a leaderboard sweep sends them to its
    workers, which ``install`` them."""
    return {name: factory for name, factory in _FACTORIES.items() if name not in _BUILTIN}


def install(registered: Mapping[str, Callable[..., Agent]]) -> None:
    """Register what ``registrations()`` gave in another process, replacing agents of the same name."""
    _FACTORIES.update({name: factory for name, factory in registered.items() if name not in _BUILTIN})


def _load_spec(spec: str) -> Callable[..., Agent]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise ValueError(f"agent spec {spec!r} is not module:attribute (e.g. mypkg.policies:make_agent)")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ValueError(
                f"agent spec {spec!r}: no module {exc.name!r} (is it installed, or in a folder on PYTHONPATH?)"
            ) from None
        raise ValueError(f"agent spec {spec!r}: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        raise ValueError(f"agent spec {spec!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"agent spec {spec!r}: module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise ValueError(f"agent spec {spec!r}: {attribute} is not callable (a factory that returns an Agent)")
    return target


def _entry_points() -> dict[str, EntryPoint]:
    """The group's entry points by name, those shadowing a built-in agent left out with a warning."""
    global _ENTRY_POINTS
    path = tuple(sys.path)
    if _ENTRY_POINTS[0] != path:
        found: dict[str, EntryPoint] = {}
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name in _BUILTIN:
                warnings.warn(
                    f"entry point {point.name} = {point.value!r} ({ENTRY_POINT_GROUP}) is ignored: "
                    f"{point.name!r} is a built-in agent",
                    stacklevel=3,
                )
            else:
                found.setdefault(point.name, point)
        _ENTRY_POINTS = (path, found)
    return _ENTRY_POINTS[1]


def _load_entry_point(point: EntryPoint) -> Callable[..., Agent]:
    where = f"entry point {point.name} = {point.value!r} of group {ENTRY_POINT_GROUP}"
    try:
        factory = point.load()
    except Exception as exc:
        raise ValueError(f"agent {point.name!r}: {where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if not callable(factory):
        raise ValueError(f"agent {point.name!r}: {where} is not callable (a factory that returns an Agent)")
    return factory


def _register_builtin() -> None:
    from infadapter_agents.autopilot import AutopilotAgent
    from infadapter_agents.hpa import HPAAgent
    from infadapter_agents.infadapter import InfAdapterAgent, MSPlusAgent, oracle_agent
    from infadapter_agents.learned import SHIPPED, learned_agent
    from infadapter_agents.mark import MArkAgent
    from infadapter_agents.static import OVER_RATE_RPS, UNDER_RATE_RPS, StaticAgent
    from infadapter_agents.vpa import VPAAgent

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
    _FACTORIES.update(builtin)
    _BUILTIN.update(builtin)


_register_builtin()

__all__ = [
    "ENTRY_POINT_GROUP",
    "Agent",
    "EnvSettings",
    "install",
    "make",
    "names",
    "register",
    "registrations",
    "resolve",
]
