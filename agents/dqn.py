"""DQN (Mnih et al. 2015) with every Rainbow extra (Hessel et al. 2018) as a switch.

    double_q        target action from the online net, its value from the target net (van Hasselt 2016)
    dueling         Q = V + A - mean(A) (Wang et al. 2016)
    prioritized     proportional prioritized replay with importance weights, beta annealed to 1 (Schaul 2016)
    n_step          n-step returns sum_k gamma^k r_k + gamma^n max Q(s_n) (Sutton 1988)
    noisy           factorised Gaussian noisy layers replace epsilon-greedy (Fortunato et al. 2018)
    distributional  C51: a categorical return distribution on n_atoms fixed atoms (Bellemare et al. 2017)

All on is Rainbow (``agent=rainbow``, :class:`RainbowConfig`). Action masks are honoured in action selection and in
the bootstrap target: the argmax over next actions only sees the next state's legal ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.agents.base import Agent, AgentConfig, Callback, as_vector_env
from rlnas.agents.replay import NStepCollector, PrioritizedReplayBuffer, ReplayBuffer
from rlnas.core.settings import (
    INT_AT_LEAST_0,
    INT_AT_LEAST_1,
    NON_NEGATIVE,
    POSITIVE,
    SIZES,
    UNIT,
    Range,
    check,
    redefault,
    setting,
)
from rlnas.envs.monitor import Budget


class NoisyLinear(nn.Module):
    """y = (mu_w + sigma_w eps_w) x + mu_b + sigma_b eps_b, eps_w = f(eps_out) f(eps_in)^T, f = sign sqrt|.|."""

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(in_features))
        self.register_buffer("eps_out", torch.zeros(out_features))

    @staticmethod
    def _f(x: torch.Tensor) -> torch.Tensor:
        return x.sign() * x.abs().sqrt()

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        self.eps_in.copy_(self._f(torch.randn(self.eps_in.shape, generator=generator)))
        self.eps_out.copy_(self._f(torch.randn(self.eps_out.shape, generator=generator)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return F.linear(x, weight, self.bias_mu + self.bias_sigma * self.eps_out)


class QNetwork(nn.Module):
    """MLP torso, then Q (or C51 atoms) heads, dueling and noisy on request: (Q, log p or None)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: list[int], dueling: bool, noisy: bool,
                 n_atoms: int, sigma0: float):
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip([obs_dim, *hidden[:-2]], hidden[:-1], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.torso = nn.Sequential(*layers)
        width = hidden[-2] if len(hidden) > 1 else obs_dim
        linear = (lambda i, o: NoisyLinear(i, o, sigma0)) if noisy else nn.Linear

        def head(out: int) -> nn.Sequential:
            return nn.Sequential(linear(width, hidden[-1]), nn.ReLU(), linear(hidden[-1], out))

        self.num_actions, self.n_atoms, self.dueling = num_actions, n_atoms, dueling
        self.advantage = head(num_actions * n_atoms)
        self.value = head(n_atoms) if dueling else None

    def forward(self, obs: torch.Tensor, support: torch.Tensor | None = None):
        x = self.torso(obs)
        out = self.advantage(x).view(-1, self.num_actions, self.n_atoms)
        if self.dueling:
            out = self.value(x).view(-1, 1, self.n_atoms) + out - out.mean(dim=1, keepdim=True)
        if support is None:
            return out.squeeze(-1), None
        log_p = F.log_softmax(out, dim=-1)
        return (log_p.exp() * support).sum(-1), log_p

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        for m in self.modules():
            if isinstance(m, NoisyLinear):
                m.reset_noise(generator)


def masked_argmax(q: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """argmax over legal actions only (an all-illegal row, a finished episode, gives 0)."""
    if mask is None:
        return q.argmax(-1)
    return q.masked_fill(~mask, torch.finfo(q.dtype).min).argmax(-1)


def td_target(returns: torch.Tensor, discounts: torch.Tensor, dones: torch.Tensor, q_next_target: torch.Tensor,
              q_next_online: torch.Tensor | None, next_masks: torch.Tensor | None) -> torch.Tensor:
    """R + (1 - done) gamma^n Q_target(s', a*), a* the masked argmax of Q_online (double) or Q_target."""
    chooser = q_next_target if q_next_online is None else q_next_online
    next_actions = masked_argmax(chooser, next_masks)
    next_values = q_next_target.gather(1, next_actions[:, None]).squeeze(1)
    return returns + (1 - dones) * discounts * next_values


def categorical_projection(next_probs: torch.Tensor, returns: torch.Tensor, discounts: torch.Tensor,
                           dones: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Project r + gamma^n z onto the fixed atoms (C51, Alg. 1): atom z_j moves to
    Tz_j = clip(r + (1 - done) gamma^n z_j, v_min, v_max), its mass split between the two
    atoms around it in proportion to closeness."""
    v_min, v_max, n_atoms = support[0], support[-1], len(support)
    delta = (v_max - v_min) / (n_atoms - 1)
    tz = (returns[:, None] + ((1 - dones) * discounts)[:, None] * support[None]).clamp(v_min, v_max)
    b = (tz - v_min) / delta
    lower, upper = b.floor().long(), b.ceil().long()
    # when b lands exactly on an atom, lower == upper: give it all the mass
    lower_weight = (upper.float() - b) + (lower == upper).float()
    upper_weight = b - lower.float()
    target = torch.zeros_like(next_probs)
    target.scatter_add_(1, lower, next_probs * lower_weight)
    target.scatter_add_(1, upper, next_probs * upper_weight)
    return target


@dataclass
class DQNConfig(AgentConfig):
    """SB3's defaults with every extra off; C51's support the paper's [-10, 10]. ``nas``:
    exploration and updates sized to a 600-step search, double Q and 3-step returns to carry
    the final reward back sooner (docs/benchmarks.md, "Every agent on NB201")."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(learning_rate=1e-3, buffer_size=50_000, learning_starts=60, batch_size=64, gamma=1.0,
                    target_update_interval=30, train_freq=1, exploration_fraction=0.3, exploration_steps=300,
                    hidden_sizes=[128, 128], double_q=True, n_step=3, v_min=0.0, v_max=1.0),
        "cartpole": dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
                         target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                         exploration_final_eps=0.04, hidden_sizes=[256, 256]),
    }
    learning_rate: float = setting(1e-4, "Adam's learning rate", POSITIVE)
    buffer_size: int = setting(1_000_000, "transitions the replay holds", INT_AT_LEAST_1)
    learning_starts: int = setting(100, "env steps of pure exploration before the first update", INT_AT_LEAST_0)
    batch_size: int = setting(32, "transitions per update (at most buffer_size)", INT_AT_LEAST_1)
    gamma: float = setting(0.99, "discount factor", UNIT)
    target_update_interval: int = setting(10_000, "env steps between hard target-network updates", INT_AT_LEAST_1)
    train_freq: int = setting(4, "env steps (per env) between updates", INT_AT_LEAST_1)
    gradient_steps: int = setting(1, "updates each time", INT_AT_LEAST_0)
    exploration_fraction: float = setting(0.1, "share of budget.env_steps over which epsilon decays", UNIT)
    exploration_initial_eps: float = setting(1.0, "epsilon at the start", UNIT)
    exploration_final_eps: float = setting(0.05, "epsilon after the decay", UNIT)
    exploration_steps: int = setting(10_000, "env steps of the decay when the budget counts evaluations only",
                                     INT_AT_LEAST_0)
    hidden_sizes: list[int] = setting([64, 64], "layer widths of the Q network", SIZES)
    max_grad_norm: float = setting(10.0, "gradient norm clip", POSITIVE)
    double_q: bool = setting(False, "the target action from the online network, its value from the target's")
    dueling: bool = setting(False, "Q = V + A - mean(A)")
    prioritized: bool = setting(False, "proportional prioritized replay, beta annealed to 1")
    prioritized_alpha: float = setting(0.5, "how much priorities count (0: uniform)", NON_NEGATIVE)
    prioritized_beta: float = setting(0.4, "importance-weight exponent at the start", UNIT)
    n_step: int = setting(1, "steps of reward summed before bootstrapping", INT_AT_LEAST_1)
    noisy: bool = setting(False, "factorised noisy layers in the heads")
    noisy_sigma: float = setting(0.5, "the noisy layers' sigma_0", NON_NEGATIVE)
    distributional: bool = setting(False, "C51: a categorical return distribution")
    n_atoms: int = setting(51, "C51's atoms", Range(2, integer=True))
    v_min: float = setting(-10.0, "C51's lowest atom", Range())
    v_max: float = setting(10.0, "C51's highest atom (above v_min)", Range())

    def validate(self) -> None:
        check(self.owner, vars(self), {
            "batch_size": Range(1, self.buffer_size, integer=True, high_name="buffer_size"),
            "v_max": Range(self.v_min, low_open=True, low_name="v_min")})


class DQN(Agent):
    Config = DQNConfig
    name = "dqn"
    config: DQNConfig
    supports_vector_env = True
    checkpointed = ("q", "q_target", "optimizer", "generator", "buffer", "steps", "updates")

    def __init__(self, env, config: DQNConfig | None = None, seed: int = 0, device: str = "cpu", **settings):
        super().__init__(env, config, seed, device, **settings)
        c = self.config
        self.envs = as_vector_env(self.env)
        self.num_envs = self.envs.num_envs
        obs_dim, n_actions = int(np.prod(self.observation_space.shape)), int(self.action_space.n)
        torch.manual_seed(seed)
        atoms = c.n_atoms if c.distributional else 1
        self.q, self.q_target = (QNetwork(obs_dim, n_actions, list(c.hidden_sizes), c.dueling, c.noisy, atoms,
                                          c.noisy_sigma).to(self.device) for _ in range(2))
        self.q_target.load_state_dict(self.q.state_dict())
        self.support = torch.linspace(c.v_min, c.v_max, c.n_atoms, device=self.device) if c.distributional else None
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=c.learning_rate,
                                          eps=1.5e-4 if c.distributional else 1e-8, fused=True)
        self.generator = torch.Generator().manual_seed(seed)
        self._obs_info = self.envs.reset(seed=seed)  # where learn() continues from
        masked = "action_mask" in self._obs_info[1]
        buffer_cls = PrioritizedReplayBuffer if c.prioritized else ReplayBuffer
        extra = {"alpha": c.prioritized_alpha} if c.prioritized else {}
        self.buffer = buffer_cls(c.buffer_size, obs_dim, n_actions, masked, seed, **extra)
        self.collectors = [NStepCollector(c.n_step, c.gamma) for _ in range(self.num_envs)]
        self.steps = self.updates = 0

    # -- acting -------------------------------------------------------------------------
    def epsilon(self, budget_steps: int | None) -> float:
        """Linear over exploration_fraction of the step budget (exploration_steps without one)."""
        c = self.config
        horizon = c.exploration_fraction * budget_steps if budget_steps else c.exploration_steps
        eps0, eps1 = c.exploration_initial_eps, c.exploration_final_eps
        return eps0 + min(1.0, self.steps / max(horizon, 1)) * (eps1 - eps0)

    @torch.no_grad()
    def act(self, obs: np.ndarray, masks: np.ndarray | None, epsilon: float) -> np.ndarray:
        q, _ = self.q(torch.as_tensor(obs, dtype=torch.float32, device=self.device), self.support)
        mask_t = None if masks is None else torch.as_tensor(masks, dtype=torch.bool, device=self.device)
        actions = masked_argmax(q, mask_t).cpu().numpy()
        explore = self.rng.random(len(actions)) < epsilon
        for i in np.flatnonzero(explore):
            legal = np.flatnonzero(masks[i]) if masks is not None else np.arange(q.shape[-1])
            actions[i] = self.rng.choice(legal)
        return actions

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None, deterministic: bool = False,
                episode_start: bool = False) -> int:
        masks = None if action_mask is None else np.asarray(action_mask).reshape(1, -1)
        epsilon = 0.0 if deterministic else self.config.exploration_final_eps
        return int(self.act(np.asarray(obs).reshape(1, -1), masks, epsilon)[0])

    # -- learning -----------------------------------------------------------------------
    def learn(self, budget: Budget, callback: Callback | None = None) -> DQN:
        c = self.config
        obs, info = self._obs_info
        trained = False  # since the last callback
        while self.env.within(budget):
            masks = info.get("action_mask")
            actions = self.act(obs.reshape(self.num_envs, -1), masks, self.epsilon(budget.env_steps))
            next_obs, rewards, terminated, truncated, info = self.envs.step(actions)
            for i in range(self.num_envs):
                ended = bool(terminated[i] or truncated[i])
                final = info["final_obs"][i] if ended else next_obs[i]
                next_mask = None
                if masks is not None:  # the mask of the state the transition lands in
                    next_mask = info["final_info"]["action_mask"][i] if ended else info["action_mask"][i]
                for t in self.collectors[i].push(obs[i].ravel(), actions[i], float(rewards[i]), final.ravel(),
                                                 bool(terminated[i]), ended, next_mask):
                    self.buffer.add(*t)
            obs = next_obs
            self.steps += self.num_envs
            if (self.steps // self.num_envs) % max(c.target_update_interval // self.num_envs, 1) == 0:
                self.q_target.load_state_dict(self.q.state_dict())  # hard update, every N env steps (as SB3)
            if self.steps >= c.learning_starts and (self.steps // self.num_envs) % c.train_freq == 0:
                for _ in range(c.gradient_steps):
                    self.train_step(budget)
                trained = True
            # A checkpoint holds no half-built episode (nor an n-step window), so only where
            # every env has just ended one is the agent's state all there is to save.
            if trained and callback is not None and np.all(terminated | truncated):
                callback(self)
                trained = False
        self._obs_info = (obs, info)
        return self

    def train_step(self, budget: Budget) -> None:
        c = self.config
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            progress = min(1.0, self.steps / budget.env_steps) if budget.env_steps else min(1.0, self.updates / 1e4)
            beta = c.prioritized_beta + progress * (1 - c.prioritized_beta)
            batch = self.buffer.sample(c.batch_size, self.device, beta)
        else:
            batch = self.buffer.sample(c.batch_size, self.device)
        if c.noisy:
            self.q.reset_noise(self.generator)
            self.q_target.reset_noise(self.generator)
        next_masks = batch.get("next_masks")
        with torch.no_grad():
            q_next_target, logp_next_target = self.q_target(batch["next_obs"], self.support)
            q_next_online = self.q(batch["next_obs"], self.support)[0] if c.double_q else None
        q, log_p = self.q(batch["obs"], self.support)
        rows = torch.arange(len(q), device=self.device)
        if self.support is None:
            target = td_target(batch["returns"], batch["discounts"], batch["dones"], q_next_target, q_next_online,
                               next_masks)
            errors = q[rows, batch["actions"]] - target
            losses = F.smooth_l1_loss(q[rows, batch["actions"]], target, reduction="none")
        else:
            with torch.no_grad():
                chooser = q_next_target if q_next_online is None else q_next_online
                next_actions = masked_argmax(chooser, next_masks)
                target = categorical_projection(logp_next_target[rows, next_actions].exp(), batch["returns"],
                                                batch["discounts"], batch["dones"], self.support)
            losses = -(target * log_p[rows, batch["actions"]]).sum(-1)  # cross-entropy to the projection
            errors = losses.detach()
        weights = batch["weights"]
        loss = (losses * weights).mean() if weights is not None else losses.mean()
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), c.max_grad_norm)
        self.optimizer.step()
        if weights is not None:
            self.buffer.update_priorities(batch["indices"], errors.detach().abs().cpu().numpy())
        self.updates += 1
        if self.updates % 100 == 0:
            logged = {"loss": loss.item(), "q_values": q.mean().item(), "td_error": errors.abs().mean().item(),
                      "epsilon": self.epsilon(budget.env_steps)}
            if weights is not None:
                logged["priority_total"] = self.buffer.tree.total
            for key, value in logged.items():
                self.logger.scalar(f"{self.name}/{key}", value, self.env.env_steps)


@dataclass
class RainbowConfig(DQNConfig):
    """Rainbow (Hessel et al. 2018): every extra on, the paper's settings (noisy nets
    explore, no epsilon). ``nas`` keeps DQN's epsilon on top (noise alone settles on a few
    dozen NB201 cells) and the support [0, 1], where accuracies lie."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(learning_rate=1e-3, buffer_size=50_000, learning_starts=60, batch_size=64, gamma=1.0,
                    target_update_interval=30, train_freq=1, hidden_sizes=[128, 128], v_min=0.0, v_max=1.0,
                    exploration_initial_eps=1.0, exploration_final_eps=0.05, exploration_fraction=0.3,
                    exploration_steps=300),
        "cartpole": dict(learning_rate=1e-3, v_min=0.0, v_max=100.0, learning_starts=1000, target_update_interval=500,
                         buffer_size=50_000, batch_size=64, train_freq=1, hidden_sizes=[128, 128]),
    }
    learning_starts: int = redefault(DQNConfig, "learning_starts", 1000)
    target_update_interval: int = redefault(DQNConfig, "target_update_interval", 8000)
    exploration_initial_eps: float = redefault(DQNConfig, "exploration_initial_eps", 0.0)
    exploration_final_eps: float = redefault(DQNConfig, "exploration_final_eps", 0.0)
    double_q: bool = redefault(DQNConfig, "double_q", True)
    dueling: bool = redefault(DQNConfig, "dueling", True)
    prioritized: bool = redefault(DQNConfig, "prioritized", True)
    n_step: int = redefault(DQNConfig, "n_step", 3)
    noisy: bool = redefault(DQNConfig, "noisy", True)
    distributional: bool = redefault(DQNConfig, "distributional", True)


class Rainbow(DQN):
    """DQN with every extra on (its defaults): the switches stay, for ablations."""

    Config = RainbowConfig
    name = "rainbow"
