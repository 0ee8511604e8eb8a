"""Agents: search controllers behind one small interface (:class:`rlnas.agents.base.Agent`).

The built-ins are registered through entry points in rlnas's ``pyproject.toml``, as any
installed package's agents are (``docs/plugins.md``); :func:`make_agent` builds one by name.
"""

from rlnas.agents.base import NAS, Agent, AgentConfig, make_agent
from rlnas.core.registry import AGENTS


def available_agents() -> dict[str, type[Agent]]:
    """Every agent, by name: the built-ins and every installed plugin's."""
    return AGENTS.available()


def agent_class(name: str) -> type[Agent]:
    """The agent registered as ``name``; an unknown name is refused with the list of what exists."""
    return AGENTS.get(name)


__all__ = ["NAS", "Agent", "AgentConfig", "agent_class", "available_agents", "make_agent"]
