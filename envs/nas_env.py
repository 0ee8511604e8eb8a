"""NASEnv: building an architecture is a Gymnasium episode, one decision per step.

Observation layout (``Box(0, 1, (D * K + D + 1,), float32)`` for D decisions of at most
K choices each)::

    [0, D*K)          decision i's choice, one-hot in slot [i*K, (i+1)*K); zeros if not made yet
    [D*K, D*K + D + 1) which decision comes next, one-hot; the last slot means "done"

An MLP policy can use it as is. Legal actions come as ``info["action_mask"]`` (int8,
length K) and from ``action_masks()`` (sb3-contrib's convention); after the last
decision the mask is all zeros, since no action is legal in a finished episode.

The reward is 0 until the last decision, then the evaluator's score, or the score weighed
against a cost (``reward``, :mod:`rlnas.search.rewards`); the final ``info`` carries ``arch`` (the
canonical string), ``score`` (the evaluator's, whatever the reward), ``metrics``, ``cost`` and
``cached``, and on a hyperparameter space (``rlnas/HPO-v0``) ``parameters``, the dict the trial
received.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from rlnas.core.registry import EVALUATORS, SPACES
from rlnas.core.store import EvaluationStore
from rlnas.envs.monitor import Reward
from rlnas.evaluators import Evaluator, StoredEvaluator
from rlnas.spaces import SearchSpace


class IllegalActionError(ValueError):
    """An action outside the legal choices of the current decision."""


class NASEnv(gym.Env[np.ndarray, int]):
    """Sequential architecture construction over a :class:`~rlnas.spaces.SearchSpace`.

    Args:
        space: a search space, or its registered name (``"nb201"``, ``"nasnet"``, ``"hpo"``)
            built with ``space_kwargs``.
        evaluator: an evaluator (or a stored one), or its registered name (``"tabular"``,
            ``"scratch"``, ``"function"``, ...) built with ``evaluator_kwargs``.
        store: an evaluation store (or its path); repeated architectures are then answered
            from it and flagged ``info["cached"] = True``.
        invalid_action: ``"raise"`` (default) raises :class:`IllegalActionError` naming the
            legal choices; ``"penalize"`` ends the episode with reward ``invalid_penalty``, for
            agents that ignore masks.
        reward: what a finished episode earns from its evaluation, ``(score, metrics) ->
            float`` (default: the score); see :mod:`rlnas.search.rewards`.
    """

    metadata: ClassVar[dict] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, space: SearchSpace | str = "nb201", evaluator: Evaluator | StoredEvaluator | str = "tabular",
                 store: EvaluationStore | str | Path | None = None, invalid_action: str = "raise",
                 invalid_penalty: float = -1.0, space_kwargs: dict | None = None,
                 evaluator_kwargs: dict | None = None, render_mode: str | None = None,
                 reward: Reward | None = None):
        if invalid_action not in ("raise", "penalize"):
            raise ValueError(f"invalid_action must be 'raise' or 'penalize', got {invalid_action!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}")
        self.space = SPACES.get(space)(**(space_kwargs or {})) if isinstance(space, str) else space
        if isinstance(evaluator, str):
            evaluator = EVALUATORS.get(evaluator)(space=self.space, **(evaluator_kwargs or {}))
        if evaluator.space.name != self.space.name or \
                evaluator.space.num_decisions != self.space.num_decisions:
            raise ValueError(f"evaluator scores space {evaluator.space!r}, env builds {self.space!r}")
        if store is not None:
            evaluator = StoredEvaluator(
                evaluator, store if isinstance(store, EvaluationStore) else EvaluationStore(store))
        self.evaluator = evaluator
        self.invalid_action, self.invalid_penalty = invalid_action, float(invalid_penalty)
        self.render_mode = render_mode
        self.reward = reward

        n, k = self.space.num_decisions, self.space.max_choices
        self._n, self._k = n, k
        self.action_space = gym.spaces.Discrete(k)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n * k + n + 1,), np.float32)
        self._obs = np.zeros(self.observation_space.shape, np.float32)
        self._decisions: list[int] = []
        self._done = True

    # -- Gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._decisions = []
        self._done = False
        self._obs[:] = 0.0
        self._obs[self._n * self._k] = 1.0
        return self._obs.copy(), {"action_mask": self.action_masks()}

    def step(self, action):
        if self._done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        action = int(action)
        step = len(self._decisions)
        if action not in self.space.legal_choices(self._decisions):
            if self.invalid_action == "raise":
                raise IllegalActionError(self.space.illegal_message(step, action, self._decisions))
            self._done = True
            info = {"action_mask": self.action_masks(), "illegal_action": True}
            return self._obs.copy(), self.invalid_penalty, True, False, info

        self._decisions.append(action)
        obs = self._obs
        obs[step * self._k + action] = 1.0
        cursor = self._n * self._k + step
        obs[cursor], obs[cursor + 1] = 0.0, 1.0
        if step + 1 < self._n:
            return obs.copy(), 0.0, False, False, {"action_mask": self.action_masks()}

        self._done = True
        arch = self.space.to_string(self._decisions)
        result = self.evaluator.evaluate(arch)
        info = {"action_mask": self.action_masks(), "arch": arch, "score": result.score,
                "metrics": result.metrics, "cost": result.cost, "cached": result.cached}
        parameters = self.space.parameters(arch)
        if parameters is not None:  # a hyperparameter point: the dict its trial was handed
            info["parameters"] = parameters
        reward = result.score if self.reward is None else self.reward(result.score, result.metrics)
        return obs.copy(), float(reward), True, False, info

    def action_masks(self) -> np.ndarray:
        """Legal choices of the next decision as an int8 mask (all zeros once done)."""
        mask = np.zeros(self._k, np.int8)
        if not self._done:
            legal = self.space.legal_choices(self._decisions)
            mask[legal.start:legal.stop] = 1
        return mask

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        names = self.space.decision_names()
        lines = [f"{names[i]}: {self.space.choice_names(i)[c]}" for i, c in enumerate(self._decisions)]
        return "\n".join(lines) or "(no decisions yet)"

    def preview(self, decisions: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The observation and action mask an episode shows after ``decisions``, without
        stepping (nothing is evaluated): how an agent thinks a cell through before handing
        it over whole, as a parallel run's proposals do (rlnas.search.driver)."""
        n, k = self._n, self._k
        obs = np.zeros(self.observation_space.shape, np.float32)
        for step, choice in enumerate(decisions):
            obs[step * k + choice] = 1.0
        obs[n * k + len(decisions)] = 1.0
        mask = np.zeros(k, np.int8)
        if len(decisions) < n:
            legal = self.space.legal_choices(list(decisions))
            mask[legal.start:legal.stop] = 1
        return obs, mask

    @property
    def decisions(self) -> tuple[int, ...]:
        """Decisions made so far in this episode."""
        return tuple(self._decisions)
