"""Local search, as NASLib runs it (White et al. 2021, "Local search is state of the art
for neural architecture search benchmarks").

Evaluate ``n_init`` random cells and stand on the best. Then walk its neighbours (every
cell one decision away) in a random order and move to the first one that scores higher;
at a local optimum (no neighbour is better) restart from a new random cell. A neighbour
already evaluated costs nothing: its known score is compared and the walk goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlnas.agents.architecture_agent import ArchitectureAgent
from rlnas.agents.base import AgentConfig
from rlnas.core.settings import INT_AT_LEAST_1, setting
from rlnas.spaces import Decisions


@dataclass
class LocalSearchConfig(AgentConfig):
    n_init: int = setting(10, "random cells evaluated before the walk starts from the best of them", INT_AT_LEAST_1)


class LocalSearch(ArchitectureAgent):
    Config = LocalSearchConfig
    name = "local_search"

    def __init__(self, env, config: LocalSearchConfig | None = None, seed: int = 0, device: str = "cpu", **settings):
        super().__init__(env, config, seed, device, **settings)
        self.scores: dict[Decisions, float] = {}  # everything evaluated, in order
        self.current: Decisions | None = None  # where the walk stands
        self.queue: list[Decisions] = []  # current's neighbours not yet looked at

    def propose(self) -> Decisions | None:
        if len(self.scores) >= self.space.size:
            return None
        if len(self.scores) < self.config.n_init:
            return self.unseen_random(self.scores)
        if self.current is None:
            self._stand_on(max(self.scores, key=self.scores.__getitem__))
        neighbour = self.next_neighbour()
        if neighbour is not None:
            return neighbour
        self.current = None  # a local optimum: restart from the cell proposed now
        return self.restart()

    def observe(self, decisions: Decisions, score: float) -> None:
        self.scores[decisions] = score
        if len(self.scores) > self.config.n_init and (self.current is None or score > self.scores[self.current]):
            self._stand_on(decisions)  # a restart's cell, or the first better neighbour

    def next_neighbour(self) -> Decisions | None:
        """The next unevaluated neighbour of ``current`` to try, or None at a local optimum."""
        while self.queue:
            neighbour = self.queue.pop()
            if neighbour in self.in_flight:
                continue  # another worker is on it: its result will move us if it is better
            if neighbour not in self.scores:
                return neighbour
            if self.scores[neighbour] > self.scores[self.current]:
                self._stand_on(neighbour)  # a known better neighbour: move for free
        return None

    def restart(self) -> Decisions:
        """Where to climb from after a local optimum: a random unevaluated cell."""
        return self.unseen_random(self.scores)

    def _stand_on(self, decisions: Decisions) -> None:
        self.current = decisions
        self.queue = self.space.neighbours(decisions, self.rng)[::-1]  # pop() takes them in order

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "scores": [[list(d), s] for d, s in self.scores.items()],
                "current": None if self.current is None else list(self.current),
                "queue": [list(d) for d in self.queue]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.scores = {tuple(d): s for d, s in state["scores"]}
        self.current = None if state["current"] is None else tuple(state["current"])
        self.queue = [tuple(d) for d in state["queue"]]
