"""Agents behind one interface (:class:`~rlnas.agents.base.Agent`), registered as plugins are."""

from rlnas.agents.base import NAS, Agent, AgentConfig, make_agent
from rlnas.core.registry import AGENTS


def available_agents() -> dict[str, type[Agent]]:
    """Every agent, by name: the built-ins and every installed plugin's."""
    return AGENTS.available()


__all__ = ["NAS", "Agent", "AgentConfig", "available_agents", "make_agent"]
