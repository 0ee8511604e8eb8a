"""Agents by name: the built-ins, and any installed package's through an entry point.

A separately installed package makes ``python train.py agent=myagent`` work by declaring,
in its own ``pyproject.toml``::

    [project.entry-points."rlnas.agents"]
    myagent = "my_package.my_module:MyAgent"

(see ``docs/plugins.md``). The agent's hyperparameters are its constructor's keyword
arguments; their defaults become the ``agent`` config group entry.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any

from rlnas.agents.base import Agent

ENTRY_POINT_GROUP = "rlnas.agents"
AGENTS: dict[str, type[Agent]] = {}
_BASE_ARGS = ("self", "env", "seed", "device")


def register(name: str):
    """Class decorator: make an agent available as ``agent=<name>``."""

    def decorate(cls: type[Agent]) -> type[Agent]:
        if not (isinstance(cls, type) and issubclass(cls, Agent)):
            raise TypeError(f"only Agent subclasses can be registered, got {cls!r}")
        if AGENTS.get(name, cls) is not cls:
            raise ValueError(f"agent name {name!r} is already taken by {AGENTS[name].__qualname__}")
        cls.name = name
        AGENTS[name] = cls
        return cls

    return decorate


def available_agents() -> dict[str, type[Agent]]:
    """Built-in agents and those installed packages declare under ``rlnas.agents``."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in AGENTS:
            register(ep.name)(ep.load())
    return dict(sorted(AGENTS.items()))


def hyperparameters(cls: type[Agent]) -> dict[str, Any]:
    """An agent's hyperparameters and their defaults, read from its constructor; one that
    passes ``**kwargs`` on also takes its parent's (a subclass that only changes defaults)."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        for p in params:
            if p.name not in _BASE_ARGS and p.default is not inspect.Parameter.empty:
                found.setdefault(p.name, p.default)
        if all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return found


def agent_class(name: str) -> type[Agent]:
    """The agent registered as ``name``; an unknown name is refused with the list of what exists."""
    agents = available_agents()
    if name not in agents:
        raise ValueError(f"unknown agent {name!r}; available agents: {', '.join(agents)}")
    return agents[name]


def make_agent(name: str, env, seed: int = 0, device: str = "cpu", **hparams: Any) -> Agent:
    """Build an agent by name; unknown names and hyperparameters are refused with the list
    of what exists."""
    cls = agent_class(name)
    known = hyperparameters(cls)
    unknown = sorted(set(hparams) - set(known))
    if unknown:
        raise ValueError(f"agent {name!r} has no hyperparameter(s) {unknown}; "
                         f"it takes {', '.join(known) or 'none'}")
    return cls(env, seed=seed, device=device, **hparams)
