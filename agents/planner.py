"""Model-predictive search: plan in a learned reward model, pay only for the plan's best.

The world model is an ensemble that predicts an architecture's score from its decisions
(:class:`~rlnas.world_models.ensemble.RewardEnsemble`), refitted to everything evaluated
before every evaluation. Candidates are ranked by the upper confidence bound

    acquisition(a) = mean(a) + exploration * std(a)     (mean, std over the ensemble)

and only the highest-ranked one is paid for. Which candidates: after ``n_init`` random
architectures, the agent climbs like local search (White et al. 2021), but in the model's
order: it stands on the best architecture evaluated, evaluates its unevaluated neighbours
best-predicted first, and moves as soon as one scores higher. At a local optimum it plans a
restart in the model: candidates are every neighbour of the ``top_k`` best evaluated plus
``random_candidates`` random ones, and each of ``planning_rounds`` rounds adds the
neighbours of the ``beam`` candidates the model rates highest (hill climbing inside the
model: a few thousand predictions for one evaluation). The recipe is PETS's (Chua et al.
2018: an ensemble for uncertainty, search over action sequences in the model) for an
episode whose only reward is its last; BANANAS (White et al. 2021) optimises the same kind
of acquisition by mutation.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from rlnas.agents.local_search import LocalSearch
from rlnas.agents.registry import register
from rlnas.ranges import INT_AT_LEAST_0, INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, check
from rlnas.spaces import Decisions
from rlnas.world_models.ensemble import RewardEnsemble


@register("planner")
class ModelPredictiveSearch(LocalSearch):
    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu", n_init: int = 20,
                 members: int = 5, hidden_size: int = 64, train_steps: int = 200, learning_rate: float = 1e-2,
                 weight_decay: float = 1e-4, exploration: float = 1.0, top_k: int = 10,
                 random_candidates: int = 200, planning_rounds: int = 2, beam: int = 5):
        check(self.name, locals(), {
            "n_init": INT_AT_LEAST_1, "members": INT_AT_LEAST_1, "hidden_size": INT_AT_LEAST_1,
            "train_steps": INT_AT_LEAST_1, "learning_rate": POSITIVE, "weight_decay": NON_NEGATIVE,
            "exploration": NON_NEGATIVE, "top_k": INT_AT_LEAST_1, "random_candidates": INT_AT_LEAST_0,
            "planning_rounds": INT_AT_LEAST_0, "beam": INT_AT_LEAST_1})
        super().__init__(env, seed, device, n_init)
        self.top_k, self.random_candidates = top_k, random_candidates
        self.planning_rounds, self.beam, self.exploration = planning_rounds, beam, exploration
        self.train_steps, self.learning_rate, self.weight_decay = train_steps, learning_rate, weight_decay
        self.model = RewardEnsemble(self.space.num_decisions * self.space.max_choices, members,
                                    hidden_size).to(self.device)

    def features(self, archs: list[Decisions]) -> torch.Tensor:
        """One-hot decisions, as in NASEnv's final observation."""
        idx = np.asarray(archs) + np.arange(self.space.num_decisions) * self.space.max_choices
        x = np.zeros((len(archs), self.space.num_decisions * self.space.max_choices), np.float32)
        np.put_along_axis(x, idx, 1.0, axis=1)
        return torch.from_numpy(x).to(self.device)

    def next_neighbour(self) -> Decisions | None:
        self._fit()
        neighbours = self._unseen(self.space.neighbours(self.current, self.rng))
        return neighbours[int(np.argmax(self._acquisition(neighbours)))] if neighbours else None

    def restart(self) -> Decisions:
        """Plan in the model: the best candidate near the best cells evaluated, or anywhere."""
        ranked = sorted(self.scores, key=self.scores.__getitem__, reverse=True)
        candidates = self._unseen(
            [n for arch in ranked[:self.top_k] for n in self.space.neighbours(arch, self.rng)]
            + [self.space.sample(self.rng) for _ in range(self.random_candidates)])
        value = self._acquisition(candidates)
        for _ in range(self.planning_rounds):
            leaders = [candidates[i] for i in np.argsort(-value, kind="stable")[:self.beam]]
            new = self._unseen([n for arch in leaders for n in self.space.neighbours(arch, self.rng)],
                               also=set(candidates))
            candidates, value = candidates + new, np.concatenate([value, self._acquisition(new)])
        return candidates[int(np.argmax(value))] if candidates else self._unseen_random()

    def _stand_on(self, decisions: Decisions) -> None:
        self.current = decisions  # no queue: the model orders the neighbours afresh each time

    def _fit(self) -> None:
        archs = list(self.scores)
        generator = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        loss = self.model.fit(self.features(archs), torch.tensor([self.scores[a] for a in archs],
                                                                 dtype=torch.float32, device=self.device),
                              self.train_steps, self.learning_rate, self.weight_decay, generator)
        self.logger.scalar(f"{self.name}/model_loss", loss, len(archs))

    def _acquisition(self, archs: list[Decisions]) -> np.ndarray:
        if not archs:
            return np.zeros(0)
        mean, std = self.model.predict(self.features(archs))
        return (mean + self.exploration * std).cpu().numpy()

    def _unseen(self, archs: list[Decisions], also: set[Decisions] = frozenset()) -> list[Decisions]:
        """``archs`` without repeats, without anything evaluated, in flight or in ``also``, order kept."""
        return [a for a in dict.fromkeys(archs) if a not in self.scores and a not in self.in_flight and a not in also]

