"""DQN (Mnih et al. 2015) with every Rainbow extra (Hessel et al. 2018) as a switch.

    double_q        target action from the online net, its value from the target net (van Hasselt 2016)
    dueling         Q = V + A - mean(A) (Wang et al. 2016)
    prioritized     proportional prioritized replay with importance weights, beta annealed to 1 (Schaul 2016)
    n_step          n-step returns sum_k gamma^k r_k + gamma^n max Q(s_n) (Sutton 1988)
    noisy           factorised Gaussian noisy layers replace epsilon-greedy (Fortunato et al. 2018)
    distributional  C51: a categorical return distribution on n_atoms fixed atoms (Bellemare et al. 2017)

All on is Rainbow (``agent=rainbow``). Action masks are honoured in action selection and in
the bootstrap target: the argmax over next actions only sees the next state's legal ones.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.agents.base import Agent, Callback, as_vector_env
from rlnas.agents.registry import register
from rlnas.agents.replay import NStepCollector, PrioritizedReplayBuffer, ReplayBuffer
from rlnas.monitor import Budget
from rlnas.ranges import INT_AT_LEAST_0, INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, SIZES, UNIT, Range, check


class NoisyLinear(nn.Module):
    """y = (mu_w + sigma_w * eps_w) x + (mu_b + sigma_b * eps_b) with factorised noise
    eps_w = f(eps_out) f(eps_in)^T, f(x) = sign(x) sqrt(|x|); ``reset_noise`` draws new eps."""

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
    """MLP torso, then one head (Q or its atoms) or dueling value and advantage heads;
    noisy layers in the heads when ``noisy``. Returns Q (B, A) and, for C51, log p (B, A, atoms)."""

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
    """n-step TD target R + (1 - done) gamma^n Q_target(s', a*), a* = masked argmax over the
    next state's legal actions of Q_online (double Q) or of Q_target (plain DQN)."""
    chooser = q_next_target if q_next_online is None else q_next_online
    next_actions = masked_argmax(chooser, next_masks)
    next_values = q_next_target.gather(1, next_actions[:, None]).squeeze(1)
    return returns + (1 - dones) * discounts * next_values


def categorical_projection(next_probs: torch.Tensor, returns: torch.Tensor, discounts: torch.Tensor,
                           dones: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Project the target distribution of r + gamma^n z onto the fixed atoms (C51, Alg. 1).

    Each atom z_j moves to Tz_j = clip(r + (1 - done) gamma^n z_j, v_min, v_max); its mass
    p_j is split between the two atoms around it in proportion to closeness. (B, atoms) -> (B, atoms).
    """
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


@register("dqn")
class DQN(Agent):
    """Constructor defaults are SB3's with every extra off; conf/agent/dqn.yaml holds the NAS
    setting. The C51 support defaults to the paper's [-10, 10]."""

    supports_vector_env = True

    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu", learning_rate: float = 1e-4,
                 buffer_size: int = 1_000_000, learning_starts: int = 100, batch_size: int = 32, gamma: float = 0.99,
                 target_update_interval: int = 10_000, train_freq: int = 4, gradient_steps: int = 1,
                 exploration_fraction: float = 0.1, exploration_initial_eps: float = 1.0,
                 exploration_final_eps: float = 0.05, exploration_steps: int = 10_000,
                 hidden_sizes: tuple[int, ...] = (64, 64), max_grad_norm: float = 10.0,
                 double_q: bool = False, dueling: bool = False, prioritized: bool = False,
                 prioritized_alpha: float = 0.5, prioritized_beta: float = 0.4, n_step: int = 1,
                 noisy: bool = False, noisy_sigma: float = 0.5, distributional: bool = False,
                 n_atoms: int = 51, v_min: float = -10.0, v_max: float = 10.0):
        check(self.name, locals(), {
            "learning_rate": POSITIVE, "buffer_size": INT_AT_LEAST_1, "learning_starts": INT_AT_LEAST_0,
            "batch_size": Range(1, buffer_size, integer=True, high_name="buffer_size"),
            "gamma": UNIT, "target_update_interval": INT_AT_LEAST_1, "train_freq": INT_AT_LEAST_1,
            "gradient_steps": INT_AT_LEAST_0, "exploration_fraction": UNIT, "exploration_initial_eps": UNIT,
            "exploration_final_eps": UNIT, "exploration_steps": INT_AT_LEAST_0, "hidden_sizes": SIZES,
            "max_grad_norm": POSITIVE, "prioritized_alpha": NON_NEGATIVE, "prioritized_beta": UNIT,
            "n_step": INT_AT_LEAST_1, "noisy_sigma": NON_NEGATIVE, "n_atoms": Range(2, integer=True),
            "v_min": Range(), "v_max": Range(v_min, low_open=True, low_name="v_min")})
        super().__init__(env, seed, device)
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise TypeError(f"{self.name} needs a Discrete action space, got {self.action_space}")
        self.envs = as_vector_env(self.env)
        self.num_envs = self.envs.num_envs
        obs_dim, n_actions = int(np.prod(self.observation_space.shape)), int(self.action_space.n)
        torch.manual_seed(seed)
        atoms = n_atoms if distributional else 1
        self.q = QNetwork(obs_dim, n_actions, list(hidden_sizes), dueling, noisy, atoms, noisy_sigma).to(self.device)
        self.q_target = QNetwork(obs_dim, n_actions, list(hidden_sizes), dueling, noisy, atoms,
                                 noisy_sigma).to(self.device)
        self.q_target.load_state_dict(self.q.state_dict())
        self.support = torch.linspace(v_min, v_max, n_atoms, device=self.device) if distributional else None
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=learning_rate, eps=1.5e-4 if distributional
                                          else 1e-8, fused=True)
        self.generator = torch.Generator().manual_seed(seed)
        self._obs_info = self.envs.reset(seed=seed)  # where learn() continues from
        masked = "action_mask" in self._obs_info[1]
        buffer_cls = PrioritizedReplayBuffer if prioritized else ReplayBuffer
        extra = {"alpha": prioritized_alpha} if prioritized else {}
        self.buffer = buffer_cls(buffer_size, obs_dim, n_actions, masked, seed, **extra)
        self.collectors = [NStepCollector(n_step, gamma) for _ in range(self.num_envs)]
        self.hp = dict(learning_starts=learning_starts, batch_size=batch_size, gamma=gamma,
                       target_update_interval=target_update_interval, train_freq=train_freq,
                       gradient_steps=gradient_steps, exploration_fraction=exploration_fraction,
                       eps0=exploration_initial_eps, eps1=exploration_final_eps, exploration_steps=exploration_steps,
                       max_grad_norm=max_grad_norm, double_q=double_q, beta0=prioritized_beta, noisy=noisy)
        self.steps = self.updates = 0

    # -- acting -------------------------------------------------------------------------
    def epsilon(self, budget_steps: int | None) -> float:
        """Linear from initial to final over exploration_fraction of the step budget
        (or over exploration_steps without one)."""
        hp = self.hp
        horizon = hp["exploration_fraction"] * budget_steps if budget_steps else hp["exploration_steps"]
        return hp["eps0"] + min(1.0, self.steps / max(horizon, 1)) * (hp["eps1"] - hp["eps0"])

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
        return int(self.act(np.asarray(obs).reshape(1, -1), masks, 0.0 if deterministic else self.hp["eps1"])[0])

    # -- learning -----------------------------------------------------------------------
    def learn(self, budget: Budget, callback: Callback | None = None) -> DQN:
        hp = self.hp
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
            if (self.steps // self.num_envs) % max(hp["target_update_interval"] // self.num_envs, 1) == 0:
                self.q_target.load_state_dict(self.q.state_dict())  # hard update, every N env steps (as SB3)
            if self.steps >= hp["learning_starts"] and (self.steps // self.num_envs) % hp["train_freq"] == 0:
                for _ in range(hp["gradient_steps"]):
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
        hp = self.hp
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            progress = min(1.0, self.steps / budget.env_steps) if budget.env_steps else min(1.0, self.updates / 1e4)
            batch = self.buffer.sample(hp["batch_size"], self.device, hp["beta0"] + progress * (1 - hp["beta0"]))
        else:
            batch = self.buffer.sample(hp["batch_size"], self.device)
        if hp["noisy"]:
            self.q.reset_noise(self.generator)
            self.q_target.reset_noise(self.generator)
        next_masks = batch.get("next_masks")
        with torch.no_grad():
            q_next_target, logp_next_target = self.q_target(batch["next_obs"], self.support)
            q_next_online = self.q(batch["next_obs"], self.support)[0] if hp["double_q"] else None
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
        nn.utils.clip_grad_norm_(self.q.parameters(), hp["max_grad_norm"])
        self.optimizer.step()
        if weights is not None:
            self.buffer.update_priorities(batch["indices"], errors.detach().abs().cpu().numpy())
        self.updates += 1
        if self.updates % 100 == 0:
            step = self.env.env_steps
            self.logger.scalar(f"{self.name}/loss", loss.item(), step)
            self.logger.scalar(f"{self.name}/q_values", q.mean().item(), step)
            self.logger.scalar(f"{self.name}/td_error", errors.abs().mean().item(), step)
            self.logger.scalar(f"{self.name}/epsilon", self.epsilon(budget.env_steps), step)
            if weights is not None:
                self.logger.scalar(f"{self.name}/priority_total", self.buffer.tree.total, step)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "q": self.q.state_dict(), "q_target": self.q_target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "buffer": self.buffer.state(), "steps": self.steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.buffer.load(state["buffer"])
        self.steps, self.updates = state["steps"], state["updates"]


@register("rainbow")
class Rainbow(DQN):
    """DQN with every extra on: double Q, dueling, prioritized replay, 3-step returns, noisy
    nets, C51. Defaults follow the paper where it applies (no epsilon: noisy nets explore;
    alpha 0.5, beta 0.4 -> 1, sigma0 0.5, 51 atoms on [-10, 10], Adam eps 1.5e-4).

    On NAS noise alone collapses: on NB201 the agent settles on a few dozen cells and then
    replays them (45 distinct cells in 5,800 steps), so conf/agent/rainbow.yaml keeps DQN's
    epsilon schedule on top.
    """

    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu", learning_rate: float = 1e-4,
                 buffer_size: int = 1_000_000, learning_starts: int = 1000, batch_size: int = 32,
                 gamma: float = 0.99, target_update_interval: int = 8000, train_freq: int = 4,
                 gradient_steps: int = 1, hidden_sizes: tuple[int, ...] = (64, 64), max_grad_norm: float = 10.0,
                 prioritized_alpha: float = 0.5, prioritized_beta: float = 0.4, n_step: int = 3,
                 noisy_sigma: float = 0.5, n_atoms: int = 51, v_min: float = -10.0, v_max: float = 10.0,
                 exploration_initial_eps: float = 0.0, exploration_final_eps: float = 0.0,
                 exploration_fraction: float = 0.1, exploration_steps: int = 10_000):
        super().__init__(env, seed, device, learning_rate, buffer_size, learning_starts, batch_size, gamma,
                         target_update_interval, train_freq, gradient_steps, exploration_fraction,
                         exploration_initial_eps, exploration_final_eps, exploration_steps, hidden_sizes=hidden_sizes,
                         max_grad_norm=max_grad_norm, double_q=True, dueling=True, prioritized=True,
                         prioritized_alpha=prioritized_alpha, prioritized_beta=prioritized_beta, n_step=n_step,
                         noisy=True, noisy_sigma=noisy_sigma, distributional=True, n_atoms=n_atoms,
                         v_min=v_min, v_max=v_max)
