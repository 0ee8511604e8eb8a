"""NASEnv: building an architecture is a Gymnasium episode, one decision per step.

Observation layout (``Box(0, 1, (D * W + D + 1,), float32)`` for D decisions of at most
K choices each; W = K, or ``max(K, 2)`` in a space with values)::

    [0, D*W)          decision i in slots [i*W, (i+1)*W): a choice one-hot, a value as [u, 1];
                      zeros if not made yet
    [D*W, D*W + D + 1) which decision comes next, one-hot; the last slot means "done"

The action space is ``Discrete(K)`` where every decision is a choice, ``Box(0, 1, (1,))``
where every one is a value (a continuous hyperparameter), and the parameterised
``Tuple((Discrete(K), Box(0, 1, (1,))))`` where they mix: a step reads the part its
decision needs, named by ``info["action_part"]`` ("choice" or "value"; only in a space with
values), and a bare int or float is taken for that part too. Legal choices come as
``info["action_mask"]`` and ``action_masks()`` (sb3-contrib's convention); on a value step
the mask is all zeros: no choice is made there. The reward is 0 until the last decision,
then the score (or ``reward`` of it); the final ``info`` carries ``arch``, ``score``,
``metrics``, ``cost``, ``cached`` and, on a hyperparameter space, ``parameters``. A failed
evaluation scores the lowest real score so far, so it never beats a real one whatever the
objective's sign; one before any real score has nothing to be placed below, and its episode
is cut (``truncated``, reward 0, ``info["unscored"]``) rather than given a made-up reward.
"""

from __future__ import annotations

import math
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


class NASEnv(gym.Env[np.ndarray, Any]):
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
        self._values = self.space.has_values  # asked once: every step's info needs it
        self.width = max(k, 2) if self._values else k
        self.action_space = action_space(self.space)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n * self.width + n + 1,), np.float32)
        self._obs = np.zeros(self.observation_space.shape, np.float32)
        self._decisions: list[int | float] = []
        self._done = True

    # -- Gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._decisions, self._done = [], False
        self._obs[:] = 0.0
        self._obs[self._n * self.width] = 1.0
        return self._obs.copy(), self._info()

    def step(self, action):
        if self._done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        step = len(self._decisions)
        try:
            decision = self.space.decision(self._decisions, self.part(action))
        except (ValueError, TypeError) as err:
            if self.invalid_action == "raise":
                raise IllegalActionError(str(err)) from None
            self._done = True
            return self._obs.copy(), self.invalid_penalty, True, False, {**self._info(), "illegal_action": True}

        self._decisions.append(decision)
        self._write(self._obs, step, decision)
        obs = self._obs.copy()
        if step + 1 < self._n:
            return obs, 0.0, False, False, self._info()

        self._done = True
        arch = self.space.to_string(self._decisions)
        result = self.evaluator.evaluate(arch)
        info = {**self._info(), "arch": arch, "score": result.score, "metrics": result.metrics,
                "cost": result.cost, "cached": result.cached}
        parameters = self.space.parameters(arch)
        if parameters is not None:  # a hyperparameter point: the dict its trial was handed
            info["parameters"] = parameters
        if not math.isfinite(result.score):  # failed, with no real score yet to rank it below
            return obs, 0.0, False, True, {**info, "unscored": True}
        reward = result.score if self.reward is None else self.reward(result.score, result.metrics)
        return obs, float(reward), True, False, info

    def action_masks(self) -> np.ndarray:
        """Legal choices of the next decision as an int8 mask (all zeros on a value step and once done)."""
        mask = np.zeros(self._k, np.int8)
        if not self._done:
            legal = self.space.legal_choices(self._decisions)
            mask[legal.start:legal.stop] = 1
        return mask

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        names = self.space.decision_names()
        lines = [f"{names[i]}: {self.space.choice_names(i)[d] if not self.space.is_value(i) else d}"
                 for i, d in enumerate(self._decisions)]
        return "\n".join(lines) or "(no decisions yet)"

    # -- beyond Gymnasium ---------------------------------------------------------------
    def part(self, action: Any) -> int | float:
        """The part of ``action`` the next decision reads: a choice (int) or a value (float)."""
        value = self.space.is_value(len(self._decisions))
        if isinstance(action, tuple | list) and len(action) == 2:  # the parameterised action
            action = action[1] if value else action[0]
        action = np.asarray(action)
        if action.size != 1:
            raise ValueError(f"expected one {'value' if value else 'choice'}, got {action!r}")
        return float(action.reshape(-1)[0]) if value else int(action.reshape(-1)[0])

    def completes(self, action: Any) -> str | None:
        """The architecture string ``action`` would complete (legal and last), else None."""
        if len(self._decisions) + 1 != self._n:
            return None
        try:
            return self.space.to_string((*self._decisions, self.space.decision(self._decisions, self.part(action))))
        except (ValueError, TypeError):
            return None

    def preview(self, decisions: Sequence[int | float]) -> tuple[np.ndarray, np.ndarray]:
        """The observation and mask after ``decisions``, without stepping or evaluating."""
        obs = np.zeros(self.observation_space.shape, np.float32)
        obs[self._n * self.width] = 1.0
        for step, d in enumerate(decisions):
            self._write(obs, step, d)
        mask = np.zeros(self._k, np.int8)
        if len(decisions) < self._n:
            legal = self.space.legal_choices(list(decisions))
            mask[legal.start:legal.stop] = 1
        return obs, mask

    def _write(self, obs: np.ndarray, step: int, decision: int | float) -> None:
        """Decision ``step`` into ``obs`` (a choice one-hot, a value as [u, 1]), the cursor moved on."""
        start = step * self.width
        if self.space.is_value(step):
            obs[start:start + 2] = decision, 1.0
        else:
            obs[start + decision] = 1.0
        cursor = self._n * self.width + step
        obs[cursor], obs[cursor + 1] = 0.0, 1.0

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"action_mask": self.action_masks()}
        if self._values and not self._done:
            info["action_part"] = "value" if self.space.is_value(len(self._decisions)) else "choice"
        return info

    @property
    def decisions(self) -> tuple[int | float, ...]:
        """Decisions made so far in this episode."""
        return tuple(self._decisions)


def action_space(space: SearchSpace) -> gym.spaces.Space:
    """``Discrete`` for choices, ``Box`` in [0, 1] for values, their ``Tuple`` where both occur."""
    values = [space.is_value(step) for step in range(space.num_decisions)]
    box = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    if all(values):
        return box
    choices = gym.spaces.Discrete(space.max_choices)
    return gym.spaces.Tuple((choices, box)) if any(values) else choices
