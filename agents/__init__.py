"""Agents: search controllers behind one small interface (:class:`rlnas.agents.base.Agent`),
registered as entry points as a plugin's are (``docs/plugins.md``); :func:`make_agent` builds one."""

from rlnas.agents.base import NAS, Agent, AgentConfig, make_agent
from rlnas.core.registry import AGENTS


def available_agents() -> dict[str, type[Agent]]:
    """Every agent, by name: the built-ins and every installed plugin's."""
    return AGENTS.available()


__all__ = ["NAS", "Agent", "AgentConfig", "available_agents", "make_agent"]
