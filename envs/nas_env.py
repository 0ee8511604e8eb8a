"""NASEnv: building an architecture is a Gymnasium episode, one decision per step.

Observation layout (``Box(0, 1, (D * K + D + 1,), float32)`` for D decisions of at most
K choices each)::

    [0, D*K)          decision i's choice, one-hot in slot [i*K, (i+1)*K); zeros if not made yet
    [D*K, D*K + D + 1) which decision comes next, one-hot; the last slot means "done"

Legal actions come as ``info["action_mask"]`` and ``action_masks()`` (sb3-contrib's
convention). The reward is 0 until the last decision, then the score (or ``reward`` of
it); the final ``info`` carries ``arch``, ``score``, ``metrics``, ``cost``, ``cached`` and,
on a hyperparameter space, ``parameters``.
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
        space: a search space, or its registered name built with ``space_kwargs``.
        evaluator: an evaluator, or its registered name built with ``evaluator_kwargs``.
        store: an evaluation store (or its path) answering repeats (``info["cached"]``).
        invalid_action: ``"raise"`` (:class:`IllegalActionError` naming the legal choices) or
            ``"penalize"`` (the episode ends with ``invalid_penalty``).
        reward: ``(score, metrics) -> float`` (default: the score); :mod:`rlnas.search.rewards`.
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
        if (evaluator.space.name, evaluator.space.num_decisions) != (self.space.name, self.space.num_decisions):
            raise ValueError(f"evaluator scores space {evaluator.space!r}, env builds {self.space!r}")
        if store is not None:
            evaluator = StoredEvaluator(evaluator, store if isinstance(store, EvaluationStore) else
                                        EvaluationStore(store))
        self.evaluator, self.reward, self.render_mode = evaluator, reward, render_mode
        self.invalid_action, self.invalid_penalty = invalid_action, float(invalid_penalty)
        self._n, self._k = n, k = self.space.num_decisions, self.space.max_choices
        self.action_space = gym.spaces.Discrete(k)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n * k + n + 1,), np.float32)
        self._obs = np.zeros(self.observation_space.shape, np.float32)
        self._decisions: list[int] = []
        self._done = True

    # -- Gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._decisions, self._done = [], False
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
        """The observation and mask after ``decisions``, without stepping or evaluating."""
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
