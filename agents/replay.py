"""Experience replay: DQN's uniform, prioritized (sum tree) and n-step transitions, and
Dreamer's windows of consecutive steps.

Storage is preallocated numpy arrays; sampling returns torch tensors. Every transition
keeps the action mask of its next state, so the bootstrap target can take a masked argmax.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch


class SumTree:
    """A sum tree: O(log n) updates and proportional sampling, one numpy op per level."""

    def __init__(self, capacity: int):
        self.capacity = 1 << max(0, int(np.ceil(np.log2(capacity))))
        self.tree = np.zeros(2 * self.capacity)  # tree[1] is the root, leaves start at `capacity`

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        nodes = np.asarray(indices) + self.capacity
        self.tree[nodes] = priorities
        nodes //= 2
        while nodes[0] >= 1:  # all leaves share a depth, so all nodes rise together
            nodes = np.unique(nodes)
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            nodes //= 2

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf indices i with prefix_sum(i) <= value < prefix_sum(i + 1), for each value."""
        nodes = np.ones(len(values), dtype=np.int64)
        values = np.array(values, dtype=np.float64)
        while nodes[0] < self.capacity:
            left = 2 * nodes
            go_right = values >= self.tree[left]
            values -= np.where(go_right, self.tree[left], 0.0)
            nodes = left + go_right
        return nodes - self.capacity

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(indices) + self.capacity]


def n_step_return(rewards: list[float], gamma: float) -> float:
    """sum_k gamma^k r_k: the reward part of an n-step target."""
    total = 0.0
    for r in reversed(rewards):
        total = r + gamma * total
    return total


class NStepCollector:
    """Turns one env's 1-step transitions into n-step ones (Sutton 1988; Hessel et al. 2018):
    (s_t, a_t, sum_{k<m} gamma^k r_{t+k}, s_{t+m}, done, gamma^m), with m = n, or fewer at the
    end of an episode."""

    def __init__(self, n: int, gamma: float):
        self.n, self.gamma = n, gamma
        self.window: deque = deque()

    def push(self, obs, action, reward, next_obs, terminated: bool, ended: bool, next_mask) -> list[tuple]:
        self.window.append((obs, action, reward))
        out = []
        if len(self.window) == self.n:
            out.append(self._emit(next_obs, terminated, next_mask))
            self.window.popleft()
        if ended:  # flush the shorter tails of the episode
            while self.window:
                out.append(self._emit(next_obs, terminated, next_mask))
                self.window.popleft()
        return out

    def _emit(self, next_obs, terminated: bool, next_mask) -> tuple:
        (obs, action, _), rewards = self.window[0], [r for _, _, r in self.window]
        discount = self.gamma ** len(rewards)
        return obs, action, n_step_return(rewards, self.gamma), next_obs, terminated, discount, next_mask


class ReplayBuffer:
    """Uniform replay of (obs, action, return, next_obs, done, discount, next_mask)."""

    def __init__(self, capacity: int, obs_dim: int, num_actions: int, masked: bool, seed: int):
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.data = {"obs": np.zeros((capacity, obs_dim), np.float32), "actions": np.zeros(capacity, np.int64),
                     "returns": np.zeros(capacity, np.float32), "next_obs": np.zeros((capacity, obs_dim), np.float32),
                     "dones": np.zeros(capacity, np.float32), "discounts": np.zeros(capacity, np.float32)}
        if masked:
            self.data["next_masks"] = np.ones((capacity, num_actions), bool)
        self.rng = np.random.default_rng(seed)

    def add(self, obs, action, ret, next_obs, done, discount, next_mask) -> int:
        i = self.pos
        row = (obs, action, ret, next_obs, float(done), discount, next_mask)
        for column, value in zip(self.data.values(), row[:len(self.data)], strict=True):  # next_mask where masked
            column[i] = value
        self.pos, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)
        return i

    def _batch(self, idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        return {**{k: torch.from_numpy(v[idx]).to(device) for k, v in self.data.items()}, "indices": idx}

    def sample(self, batch_size: int, device: torch.device) -> dict:
        idx = self.rng.integers(0, self.size, batch_size)
        batch = self._batch(idx, device)
        batch["weights"] = None
        return batch

    def state_dict(self) -> dict:
        """The filled rows only, as tensors: an early checkpoint stays small."""
        return {"rng": self.rng.bit_generator.state, "size": self.size, "pos": self.pos,
                **{k: torch.from_numpy(v[:self.size].copy()) for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.size, self.pos = state["size"], state["pos"]
        for k, v in self.data.items():
            v[:self.size] = state[k].numpy()


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016): P(i) = p_i^alpha / sum_k p_k^alpha,
    stratified over ``batch_size`` equal segments of the total, with importance weights
    w_i = (N P(i))^-beta / max_j w_j. New transitions get the largest priority seen."""

    def __init__(self, capacity: int, obs_dim: int, num_actions: int, masked: bool, seed: int,
                 alpha: float = 0.5, eps: float = 1e-6):
        super().__init__(capacity, obs_dim, num_actions, masked, seed)
        self.tree, self.alpha, self.eps, self.max_priority = SumTree(capacity), alpha, eps, 1.0

    def add(self, *transition) -> int:
        i = super().add(*transition)
        self.tree.update(np.array([i]), np.array([self.max_priority ** self.alpha]))
        return i

    def sample(self, batch_size: int, device: torch.device, beta: float = 0.4) -> dict:
        bounds = np.linspace(0.0, self.tree.total, batch_size + 1)
        values = self.rng.uniform(bounds[:-1], bounds[1:])
        idx = np.minimum(self.tree.find(values), self.size - 1)
        probs = self.tree[idx] / self.tree.total
        weights = (self.size * probs) ** -beta
        batch = self._batch(idx, device)
        batch["weights"] = torch.as_tensor(weights / weights.max(), dtype=torch.float32, device=device)
        return batch

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> None:
        priorities = np.abs(errors) + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(indices, priorities ** self.alpha)

    def state_dict(self) -> dict:
        """Adds the priorities: the leaves rebuild the same tree to the bit."""
        return {**super().state_dict(), "max_priority": self.max_priority,
                "priorities": torch.from_numpy(self.tree[np.arange(self.size)].copy())}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.max_priority = state["max_priority"]
        if self.size:
            self.tree.update(np.arange(self.size), state["priorities"].numpy())


class SequenceReplay:
    """Steps in arrival order; ``sample`` draws windows, ``firsts`` marking episode starts."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, mask_dim: int | None = None):
        self.capacity, self.size, self.head = capacity, 0, 0
        mask_dim = action_dim if mask_dim is None else mask_dim
        self.data = {"obs": np.zeros((capacity, obs_dim), np.float32),
                     "actions": np.zeros((capacity, action_dim), np.float32),
                     "rewards": np.zeros(capacity, np.float32), "terminals": np.zeros(capacity, np.float32),
                     "firsts": np.zeros(capacity, np.float32), "masks": np.ones((capacity, mask_dim), np.float32)}

    def add(self, obs: np.ndarray, action: np.ndarray | None, reward: float, terminal: bool, first: bool,
            mask: np.ndarray | None) -> None:
        """``action`` is the vector of the one that led to ``obs`` (a one-hot choice, or a value
        in its slot; None at an episode's first step)."""
        i = self.head
        self.data["obs"][i], self.data["rewards"][i] = obs, reward
        self.data["actions"][i] = 0.0 if action is None else action
        self.data["terminals"][i], self.data["firsts"][i] = terminal, first
        self.data["masks"][i] = 1.0 if mask is None else mask
        self.head, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)

    def sample(self, batch: int, length: int, rng: np.random.Generator,
               device: torch.device) -> dict[str, torch.Tensor]:
        oldest = self.head if self.size == self.capacity else 0
        starts = rng.integers(0, self.size - length + 1, batch)
        idx = (oldest + starts[None, :] + np.arange(length)[:, None]) % self.capacity  # (T, B)
        out = {k: torch.as_tensor(v[idx], device=device) for k, v in self.data.items()}
        out["firsts"][0] = 1.0  # a window starts from the zero state, as an episode does
        return out

    def state_dict(self) -> dict[str, Any]:
        """The filled rows only: an early checkpoint stays small."""
        return {"size": self.size, "head": self.head,
                **{k: torch.as_tensor(v[:self.size]) for k, v in self.data.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size, self.head = state["size"], state["head"]
        for k in self.data:
            self.data[k][:self.size] = state[k].numpy()
