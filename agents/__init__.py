"""Agents: search controllers behind one small interface (:class:`rlnas.agents.base.Agent`).

Importing this package registers the built-ins; :func:`make_agent` also finds agents
that other installed packages declare under the ``rlnas.agents`` entry-point group.
"""

from rlnas.agents import a2c, darts, dqn, dreamer, evolution, local_search, planner, ppo, random_search, reinforce, tpe  # noqa: F401  (registers them)
from rlnas.agents.base import Agent
from rlnas.agents.registry import agent_class, available_agents, make_agent, register

__all__ = ["Agent", "agent_class", "available_agents", "make_agent", "register"]
