"""What PPO and A2C share (skeleton, rollouts, GAE), and with REINFORCE the advantage scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlnas.agents.base import Agent, AgentConfig, as_vector_env
from rlnas.agents.policies import ActionHead, ActorCritic
from rlnas.core.settings import INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, SIZES, UNIT, OneOf, setting
from rlnas.envs.monitor import Budget


@dataclass
class ActorCriticConfig(AgentConfig):
    """What PPO and A2C share; defaults are SB3's PPO's (A2C's class changes its own)."""

    policy: str = setting("mlp", "mlp, or lstm: Zoph & Le's recurrent NAS controller", OneOf(("mlp", "lstm")))
    hidden_sizes: list[int] = setting([64, 64], "layer widths (lstm: the first is its hidden size)", SIZES)
    learning_rate: float = setting(3e-4, "Adam's learning rate", POSITIVE)
    n_steps: int = setting(2048, "steps collected from each env per update", INT_AT_LEAST_1)
    gamma: float = setting(0.99, "discount factor", UNIT)
    gae_lambda: float = setting(0.95, "GAE's lambda (1: Monte-Carlo advantages)", UNIT)
    ent_coef: float = setting(0.0, "weight of the entropy bonus", NON_NEGATIVE)
    vf_coef: float = setting(0.5, "weight of the value loss", NON_NEGATIVE)
    max_grad_norm: float = setting(0.5, "gradient norm clip", POSITIVE)
    normalize_advantage: bool = setting(True, "standardise advantages per minibatch")
    anneal: bool = setting(False, "learning rate (and PPO's clip range) decay linearly to 0 over budget.env_steps")
    center_values: bool = setting(False, "the critic learns the return minus the mean return so far")
    shared_lstm: bool = setting(False, "lstm: the value head on the policy's LSTM, not on an LSTM of its own")

    def validate(self) -> None:
        if self.shared_lstm and self.policy != "lstm":
            raise ValueError(f"{self.owner}: shared_lstm=True puts the critic's value head on the policy's LSTM; it "
                             f"needs policy='lstm', got policy={self.policy!r} (an MLP policy's critic is a network "
                             "of its own)")


def scale_by_running_rms(advantages: torch.Tensor, square: float | None, decay: float) -> tuple[torch.Tensor, float]:
    """``A / sqrt(s_k)``, ``s_k = decay * s_{k-1} + (1 - decay) * mean(A_k^2)``, ``s_1 = mean(A_1^2)``;
    returns the scaled advantages and ``s_k``. A NAS episode's steps share one return, so a
    batch has no spread to normalise by; this puts advantages in units of their recent size."""
    mean_square = (advantages**2).mean().item()
    square = mean_square if square is None else decay * square + (1 - decay) * mean_square
    return advantages / (square**0.5 + 1e-8), square


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, ended: torch.Tensor, last_values: torch.Tensor,
                gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al. 2016) over (T, N) tensors; returns (A, R):

        delta_t = r_t + gamma * V(s_{t+1}) * (1 - ended_t) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - ended_t) * A_{t+1},   R_t = A_t + V(s_t)
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_values)
    for t in reversed(range(len(rewards))):
        next_values = last_values if t == len(rewards) - 1 else values[t + 1]
        nonterminal = 1.0 - ended[t]
        delta = rewards[t] + gamma * next_values * nonterminal - values[t]
        running = delta + gamma * lam * nonterminal * running
        advantages[t] = running
    return advantages, advantages + values


@dataclass
class Rollout:
    obs: torch.Tensor  # (T, N, obs_dim)
    actions: torch.Tensor  # (T, N): a choice's index, or a value in [0, 1]
    log_probs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    ended: torch.Tensor  # episode ended with this transition
    starts: torch.Tensor  # episode started at this observation (resets LSTM state)
    masks: torch.Tensor | None  # (T, N, A) bool
    advantages: torch.Tensor
    returns: torch.Tensor
    initial_state: Any  # LSTM state before the first step


class ActorCriticAgent(Agent):
    """Skeleton of PPO and A2C: a policy, a vector env, and :meth:`collect`.

    ``center_values``: the critic learns ``V(s) - m``, ``m`` the mean return so far. A NAS
    return is an accuracy near 0.8 and a critic starts near 0, so without it every early
    cell looks good by about +0.8 until the critic catches up."""

    supports_vector_env = True
    acts_on_values = True
    checkpointed = ("policy", "optimizer", "generator", "updates", "return_mean", "return_count")
    config: ActorCriticConfig

    def __init__(self, env: gym.Env, config: ActorCriticConfig | None = None, seed: int = 0, device: str = "cpu",
                 **settings: Any):
        super().__init__(env, config, seed, device, **settings)
        c = self.config
        self.head = ActionHead(self.action_space, self.name)
        self.envs = as_vector_env(self.env)
        torch.manual_seed(seed)
        obs_dim = int(np.prod(self.observation_space.shape))
        self.policy = ActorCritic(obs_dim, self.head.size, list(c.hidden_sizes), c.policy == "lstm", c.shared_lstm)
        self.policy.to(self.device)
        self.generator = torch.Generator().manual_seed(seed)
        self.num_envs = self.envs.num_envs
        self._next: tuple | None = None  # (obs, starts, masks, state) where the last rollout stopped
        self.updates = 0
        self._predict_state = None
        self.return_mean, self.return_count = 0.0, 0  # m, and how many returns it averages

    def _values(self, critic: torch.Tensor) -> torch.Tensor:
        """The critic's output in return units."""
        return critic + self.return_mean

    def _observe_returns(self, returns: torch.Tensor) -> float:
        """Fold a rollout's returns into ``m``; return the change of ``m``."""
        if not self.config.center_values:
            return 0.0
        before = self.return_mean
        self.return_count += returns.numel()
        self.return_mean += (returns.mean().item() - self.return_mean) * returns.numel() / self.return_count
        return self.return_mean - before

    def _tensor(self, x: np.ndarray, dtype=torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)

    def _masks(self, info: dict) -> torch.Tensor | None:
        mask = info.get("action_mask")
        return None if mask is None else self._tensor(mask, torch.bool)

    @torch.no_grad()
    def collect(self, budget: Budget) -> Rollout | None:
        """Step all envs ``n_steps`` times; None if the budget ran out first."""
        if self._next is None:
            obs, info = self.envs.reset(seed=self.seed)
            self._next = (self._tensor(obs.reshape(self.num_envs, -1)), torch.ones(self.num_envs, device=self.device),
                          self._masks(info), self.policy.initial_state(self.num_envs))
        obs, starts, masks, state = self._next
        initial_state = state
        T, N, gamma = self.config.n_steps, self.num_envs, self.config.gamma
        buf = {k: torch.zeros(T, N, device=self.device) for k in
               ("actions", "log_probs", "values", "rewards", "ended", "starts")}
        buf_obs = torch.zeros(T, N, obs.shape[-1], device=self.device)
        buf_masks = None if masks is None else torch.zeros(T, N, masks.shape[-1], dtype=torch.bool, device=self.device)
        for t in range(T):
            if not self.env.within(budget):
                return None
            logits, values, state = self.policy(obs, state, starts)
            values = self._values(values)
            dist = self.head.distribution(logits, masks)
            actions = self.head.draw(dist, self.generator)
            buf_obs[t], buf["starts"][t], buf["actions"][t] = obs, starts, actions
            buf["log_probs"][t], buf["values"][t] = dist.log_prob(actions), values
            if masks is not None:
                buf_masks[t] = masks
            next_obs, rewards, terminated, truncated, info = self.envs.step(self.head.to_env(actions, dist))
            rewards = self._tensor(rewards)
            # a time limit is not a terminal state: bootstrap it (as SB3 does)
            for i in np.flatnonzero(truncated & ~terminated):
                final_obs = self._tensor(info["final_obs"][i].reshape(1, -1))
                sub_state = None if state is None else (state[0][i:i + 1], state[1][i:i + 1])
                rewards[i] += gamma * self._values(self.policy(final_obs, sub_state)[1][0])
            ended = self._tensor(terminated | truncated)
            buf["rewards"][t], buf["ended"][t] = rewards, ended
            obs, starts, masks = self._tensor(next_obs.reshape(N, -1)), ended, self._masks(info)
        self._next = (obs, starts, masks, state)
        last_values = self._values(self.policy(obs, state, starts)[1])
        advantages, returns = compute_gae(buf["rewards"], buf["values"], buf["ended"], last_values,
                                          gamma, self.config.gae_lambda)
        shift = self._observe_returns(returns)  # before the update, so that its value loss sees the new m
        return Rollout(buf_obs, buf["actions"], buf["log_probs"], buf["values"] + shift, buf["rewards"],
                       buf["ended"], buf["starts"], buf_masks, advantages, returns, initial_state)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor, masks: torch.Tensor | None,
                         starts: torch.Tensor | None = None, initial_state=None):
        """Log-probabilities, entropies and values of ``actions`` (LSTM: (T, B) sequences)."""
        if not self.policy.recurrent:
            logits, values, _ = self.policy(obs)
            dist = self.head.distribution(logits, masks)
            return dist.log_prob(actions), dist.entropy(), self._values(values)
        state, out = initial_state, []
        for t in range(len(obs)):
            logits, values, state = self.policy(obs[t], state, starts[t])
            dist = self.head.distribution(logits, None if masks is None else masks[t])
            out.append((dist.log_prob(actions[t]), dist.entropy(), self._values(values)))
        return tuple(torch.stack(x) for x in zip(*out, strict=True))

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None, deterministic: bool = False,
                episode_start: bool = False) -> int | float:
        """One observation at a time; ``episode_start=True`` resets the LSTM state."""
        if episode_start or self._predict_state is None:
            self._predict_state = self.policy.initial_state(1)
        with torch.no_grad():
            logits, _, self._predict_state = self.policy(self._tensor(obs).reshape(1, -1), self._predict_state)
            mask = None if action_mask is None else self._tensor(action_mask, torch.bool).reshape(1, -1)
            dist = self.head.distribution(logits, mask)
        return self.head.one(self.head.draw(dist, self.generator, deterministic), dist)

    def log_update(self, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            self.logger.scalar(f"{self.name}/{key}", value, self.env.env_steps)


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var[target - pred] / Var[target]: 1 is a perfect critic, 0 a constant one."""
    var = target.var()
    return float("nan") if var == 0 else float(1 - (target - pred).var() / var)
