"""The search driver: one loop, three ways to keep evaluations going.

* ``sequential`` (``parallel=1``): the agent's own ``learn``, one evaluation at a time.
* ``asynchronous`` (agents that ``propose`` whole architectures): a proposal as soon as a
  worker is free, so a slow child never holds the others back (:class:`AsyncSearch`).
* ``lock_step`` (agents that step a vector env: PPO, A2C, DQN): one env per worker, stepped
  together (:mod:`rlnas.search.lockstep`).

The driver checkpoints at the agent's callbacks, with what is in flight, so a run killed
at any moment resumes without repeating or dropping an evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rlnas.core import checkpoint
from rlnas.envs.monitor import Budget, SearchCounts
from rlnas.evaluators.stored import StoredEvaluator
from rlnas.execution.pool import Pool
from rlnas.search.lockstep import as_evaluation, evaluate_all


def proposes(agent: object) -> bool:
    """Whether ``agent`` (or its class) proposes whole architectures and learns from their scores."""
    cls = agent if isinstance(agent, type) else type(agent)
    return callable(getattr(cls, "propose", None)) and callable(getattr(cls, "learn_from", None))


def strategy(agent_class: type, parallel: int) -> str:
    """How ``agent_class`` is driven with ``parallel`` evaluations at once (refused if it cannot be)."""
    if parallel == 1:
        return "sequential"
    if proposes(agent_class):
        return "asynchronous"
    if getattr(agent_class, "supports_vector_env", False):
        return "lock_step"
    raise ValueError(f"parallel={parallel} needs an agent that proposes whole architectures (as random, evolution, "
                     f"planner, reinforce or dreamer_v2) or steps a vector env (as ppo, a2c or dqn); agent "
                     f"{agent_class.name!r} does neither: use parallel=1")


class Checkpoints:
    """The agent's state, counters and what is in flight, saved atomically every ``every``."""

    def __init__(self, path: Path | None, every: int, monitor: SearchCounts):
        self.path, self.every, self.monitor = path, every, monitor
        self._saved_at = len(monitor.evaluations)

    def maybe_save(self, agent: Any) -> None:
        if len(self.monitor.evaluations) - self._saved_at >= self.every or agent.checkpoint_each_callback:
            self.save(agent)

    def save(self, agent: Any, in_flight: Sequence[Sequence[int]] = ()) -> None:
        if self.path is None:
            return
        m = self.monitor
        checkpoint.save({"agent": agent.state_dict(), "in_flight": [list(d) for d in in_flight],
                         "monitor": {"env_steps": m.env_steps, "episodes": m.episodes,
                                     "wall_seconds": m.wall_seconds}}, self.path)
        self._saved_at = len(m.evaluations)

    def restore(self, agent: Any, stored: StoredEvaluator) -> list[list[int]]:
        """Restore the agent and counters, the evaluations from the store; return what was in flight."""
        if self.path is None or not self.path.is_file():
            return []
        state = checkpoint.load(self.path)
        agent.load_state_dict(state["agent"])
        self.monitor.restore(stored.store.history(stored.fingerprint, run=stored.run), **state["monitor"])
        self._saved_at = len(self.monitor.evaluations)
        return state.get("in_flight", [])


def retry_failures(stored: StoredEvaluator, pool: Pool | None) -> None:
    """Run this run's failed evaluations again (a resumed run's: their cause may be fixed), on
    the workers if there are some, each result in place of its failure. A kill meanwhile
    leaves the rest failed, to be retried by the next resume."""
    if pool is not None:
        evaluate_all(pool, stored, stored.failures(), retried=True)
        return
    for arch in stored.failures():
        stored.record(stored.inner.evaluate(arch), retried=True)


class AsyncSearch:
    """Drive a proposing agent with ``pool.workers`` evaluations in flight. A proposal in
    flight waits for its result (a free repeat), a stored one is answered at once; a result
    is committed, replayed through the env (the store answers it) and shown to the agent."""

    def __init__(self, agent: Any, pool: Pool, stored: StoredEvaluator):
        self.agent, self.pool, self.stored = agent, pool, stored
        self.space = agent.nas_env().space
        self.waiting: dict[str, list[tuple[int, ...]]] = {}  # arch -> its proposals; the first is submitted

    def in_flight(self) -> list[list[int]]:
        """What is being evaluated, for the checkpoint: a resumed run evaluates it again."""
        return [list(proposals[0]) for proposals in self.waiting.values()]

    def learn(self, budget: Budget, callback: Callable[[Any], None] | None = None,
              resumed: Sequence[Sequence[int]] = ()) -> None:
        """Search until the budget is spent, first evaluating ``resumed`` (a killed run's in flight)."""
        agent, pool = self.agent, self.pool
        for decisions in resumed:
            self._offer(tuple(decisions))
        exhausted = False
        while True:
            repeats = 0  # proposals of what is in flight: they wait, and the agent learns nothing meanwhile
            while pool.free and self._room(budget) and not exhausted:
                decisions = agent.propose()
                if decisions is None:
                    exhausted = True  # the agent has nothing left to try
                    break
                repeats += self._offer(tuple(decisions)) == "waits"
                if repeats >= pool.workers:
                    break  # let a result change the agent before it proposes more of the same
            if not self.waiting:
                return
            for outcome in pool.wait():
                self.stored.record(as_evaluation(outcome))
                self._settle(self.waiting.pop(outcome.key))
                if callback is not None:
                    callback(agent)

    def _room(self, budget: Budget) -> bool:
        """Whether another evaluation fits: done + in flight stays within the budget."""
        env = self.agent.env
        return env.within(budget) and (budget.evaluations is None
                                       or len(env.evaluations) + len(self.waiting) < budget.evaluations)

    def _offer(self, decisions: tuple[int, ...]) -> str:
        """Submit a proposal: ``"submitted"``, ``"stored"`` (answered now) or ``"waits"`` (in flight)."""
        arch = self.space.to_string(decisions)
        if arch in self.waiting:
            self.waiting[arch].append(decisions)
            return "waits"
        if self.stored.lookup(arch) is not None:
            self._settle([decisions])
            return "stored"
        self.waiting[arch] = [decisions]
        self.agent.in_flight.add(decisions)
        self.pool.submit(arch, "evaluate", arch)
        return "submitted"

    def _settle(self, proposals: list[tuple[int, ...]]) -> None:
        """Replay each proposal through the env (the store answers) and show the agent its score."""
        for decisions in proposals:
            self.agent.in_flight.discard(decisions)
            self.agent.learn_from(decisions, self.agent.play(decisions))
