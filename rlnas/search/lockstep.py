"""Lock-step: agents that step a vector env (PPO, A2C, DQN) with several evaluations at once.

One NASEnv per worker, stepped together; the architectures a step completes are evaluated
at once on the pool, and the step waits for the slowest (``parallel/busy_fraction`` shows
the cost). An episode the budget does not pay for is cut (``truncated``, reward 0,
``info["over_budget"]``), so the budget is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import deepcopy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import concatenate

from rlnas.core.store import Evaluation
from rlnas.evaluators.base import failed
from rlnas.evaluators.stored import StoredEvaluator
from rlnas.execution.pool import Outcome, Pool


class LockStepEnvs(gym.vector.SyncVectorEnv):
    """NASEnvs stepped together, ``settle(archs)`` evaluating what a step completes first."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], settle: Callable[[list[str]], list[str]]):
        super().__init__(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        self.settle = settle

    def step(self, actions):
        # a batched parameterised action is a tuple of parts: one (choice, value) per sub-env
        actions = list(zip(*actions, strict=True)) if isinstance(actions, tuple) else list(actions)
        completing = {}  # sub-env -> the architecture its action completes
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            if (arch := env.unwrapped.completes(action)) is not None:
                completing[i] = arch
        paid = set(self.settle(list(dict.fromkeys(completing.values()))))

        infos: dict[str, Any] = {}
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            if i in completing and completing[i] not in paid:
                cut = {"action_mask": np.zeros_like(env.unwrapped.action_masks()), "over_budget": True}
                result = (self._env_obs[i], 0.0, False, True, cut)
            else:
                result = env.step(action)
            self._env_obs[i], self._rewards[i], self._terminations[i], self._truncations[i], info = result
            if self._terminations[i] or self._truncations[i]:
                infos = self._add_info(infos, {"final_obs": self._env_obs[i], "final_info": info}, i)
                self._env_obs[i], info = env.reset()
            infos = self._add_info(infos, info, i)
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        return (deepcopy(self._observations), np.copy(self._rewards), np.copy(self._terminations),
                np.copy(self._truncations), infos)


def evaluate_all(pool: Pool, stored: StoredEvaluator, archs: Sequence[str], retried: bool = False) -> None:
    """Evaluate on ``pool`` the ``archs`` the store lacks (``retried``: its failures, run
    again), each as a worker is free, and commit them."""
    todo = [arch for arch in archs if retried or stored.lookup(arch) is None]
    while todo or pool.in_flight:
        while todo and pool.free:
            arch = todo.pop(0)
            pool.submit(arch, "evaluate", arch)
        for outcome in pool.wait():
            stored.record(as_evaluation(outcome), retried=retried)


def as_evaluation(outcome: Outcome) -> Evaluation:
    """A pool's outcome of ``evaluate`` as the evaluation it is, or a failed one saying why."""
    return outcome.value if outcome.error is None else failed(outcome.key, outcome.error)
