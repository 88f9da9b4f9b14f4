"""The agent registry: every policy the harness can play, looked up by name.

The harness (``infadapter_env.leaderboard``) gets agents only through this registry, never by
importing an agents package, so the layers stay one-way (docs/architecture.md). Agents join it
four ways:

- the built-in agents of the repository's ``agents/`` package (``infadapter_agents``), declared
  by the entry point ``builtin`` of the group ``infadapter.agent_providers`` in ``pyproject.toml``:
  a function returning ``{name: factory}``, called on the registry's first use;
- ``register("greedy", Greedy)`` in the running process (a script, a notebook);
- a ``"module:attribute"`` spec naming a factory: ``make("mypkg.policies:make_greedy")``. The agent's
  name is the spec, or the factory's own ``name`` attribute where it has one (an Agent subclass that
  sets ``name``, or ``factory.name = "greedy"`` on a function);
- an installed package's entry point in the group ``infadapter.agents``
  (``greedy = "mypkg.policies:make_greedy"`` under ``[project.entry-points."infadapter.agents"]``);
  the entry point's name is the agent's, and its module is imported when the agent is first made.

A factory is any callable that returns an agent (an object with ``reset(info)`` and
``act(observation, info)``; ``infadapter_agents.Agent`` is the base class); ``make``'s options go to it.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

Factory = Callable[..., Any]
PROVIDER_GROUP = "infadapter.agent_providers"
DEFAULT_AGENT_NAME = "agent"  # the name of an agent class that sets none (``Agent.name``)

ENTRY_POINT_GROUP = "infadapter.agents"

_FACTORIES: dict[str, Factory] = {}
_SPECS: dict[str, str] = {}  # the module:attribute spec each agent loaded from a spec came from
_LOADED = False
_BUILTIN: set[str] = set()
# The entry points found on a sys.path (looked up again when sys.path changes).
_ENTRY_POINTS: tuple[tuple[str, ...], dict[str, EntryPoint]] = ((), {})


def _builtin() -> None:
    """Load the built-in agents from their providers' entry points, once per process."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for point in entry_points(group=PROVIDER_GROUP):
        try:
            provided = point.load()()
        except Exception as exc:
            raise ValueError(f"agent provider {point.name} = {point.value!r} ({PROVIDER_GROUP}) failed: {exc}") from exc
        for name, factory in provided.items():
            _FACTORIES.setdefault(name, factory)
            _BUILTIN.add(name)


def register(name: str, factory: Factory, replace: bool = False) -> None:
    """Register ``factory`` (a callable returning an Agent) under ``name``; ``replace=True`` replaces
    an agent of that name (re-running a notebook cell that defines and registers a class)."""
    _builtin()
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"an agent's name is a non-empty string without surrounding spaces, got {name!r}")
    if not callable(factory):
        raise ValueError(f"agent {name!r}: the factory must be callable (a class or function returning an Agent)")
    if not replace and (name in _FACTORIES or name in _entry_points()):
        raise ValueError(f"agent {name!r} is registered already (register(..., replace=True) replaces it)")
    _FACTORIES[name] = factory


def names() -> list[str]:
    """Every registered agent name: the built-in ones, those registered here, then the entry points'."""
    _builtin()
    return [*_FACTORIES, *(name for name in _entry_points() if name not in _FACTORIES)]


def resolve(name: str) -> str:
    """The registered name of an agent given by name or by ``"module:attribute"`` spec; a spec (or
    an entry point) is loaded and registered here on first use. A clear ``ValueError`` names what is
    wrong with a name that is none of these."""
    _builtin()
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
    label = own if isinstance(own, str) and own.strip() and own != DEFAULT_AGENT_NAME else name
    if _FACTORIES.get(label, factory) is not factory:
        raise ValueError(f"agent spec {name!r} names its agent {label!r}, the name of another registered agent")
    _FACTORIES[label] = factory
    _SPECS[label] = name
    return label


def source(name: str) -> str | None:
    """Where another process finds the agent registered as ``name`` when the name alone does not
    find it: the ``module:attribute`` spec it was loaded from, or the module and name of a factory
    registered here (None for a built-in or an entry point, which any process finds by name, and for
    a factory defined in ``__main__`` or inside a function, which no other process can import)."""
    _builtin()
    if name in _SPECS:
        return _SPECS[name]
    factory = _FACTORIES.get(name)
    if factory is None or name in _BUILTIN or name in _entry_points():
        return None
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def make(name: str, **options: Any) -> Any:
    """A new agent by name or ``"module:attribute"`` spec; ``options`` go to its factory."""
    label = resolve(name)
    agent = _FACTORIES[label](**options)
    if not callable(getattr(agent, "act", None)) or not callable(getattr(agent, "reset", None)):
        raise ValueError(f"agent {label!r}: its factory returned {agent!r}, which has no reset(info) and act(...)")
    agent.name = label
    return agent


def registrations() -> dict[str, Factory]:
    """The agents registered in this process beyond the built-in ones (by ``register``, a spec, or a
    loaded entry point). Other processes do not see them: a leaderboard sweep sends them to its
    workers, which ``install`` them."""
    _builtin()
    return {name: factory for name, factory in _FACTORIES.items() if name not in _BUILTIN}


def install(registered: Mapping[str, Factory]) -> None:
    """Register what ``registrations()`` gave in another process, replacing agents of the same name."""
    _builtin()
    _FACTORIES.update({name: factory for name, factory in registered.items() if name not in _BUILTIN})


def _load_spec(spec: str) -> Factory:
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


def _load_entry_point(point: EntryPoint) -> Factory:
    where = f"entry point {point.name} = {point.value!r} of group {ENTRY_POINT_GROUP}"
    try:
        factory = point.load()
    except Exception as exc:
        raise ValueError(f"agent {point.name!r}: {where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if not callable(factory):
        raise ValueError(f"agent {point.name!r}: {where} is not callable (a factory that returns an Agent)")
    return factory
