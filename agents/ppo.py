"""PPO-clip (Schulman et al. 2017), read top to bottom.

Each iteration collects ``n_steps`` from every env (agents/on_policy.py: rollout and GAE),
then takes ``n_epochs`` passes of minibatch steps on

    L = -E[min(r A, clip(r, 1 - eps, 1 + eps) A)] + vf_coef * E[(V - R)^2] - ent_coef * E[H]

with r = pi(a|s) / pi_old(a|s), advantages normalised per minibatch, optional value
clipping, gradient-norm clipping, and learning rate and clip range annealed linearly to 0
over the budget's env steps (SB3's ``lin_`` schedules). With the LSTM policy a minibatch
is a set of whole env sequences, replayed from the rollout's initial state.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from rlnas.agents.base import Callback
from rlnas.agents.on_policy import ACTOR_CRITIC_RANGES, ActorCriticAgent, explained_variance
from rlnas.agents.registry import register
from rlnas.monitor import Budget
from rlnas.ranges import INT_AT_LEAST_1, POSITIVE, Range, check


@register("ppo")
class PPO(ActorCriticAgent):
    """Constructor defaults are SB3's (an MLP policy); conf/agent/ppo.yaml holds the NAS setting."""

    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu", policy: str = "mlp",
                 hidden_sizes: tuple[int, ...] = (64, 64), learning_rate: float = 3e-4, n_steps: int = 2048,
                 batch_size: int = 64, n_epochs: int = 10, gamma: float = 0.99, gae_lambda: float = 0.95,
                 clip_range: float = 0.2, clip_range_vf: float | None = None, ent_coef: float = 0.0,
                 vf_coef: float = 0.5, max_grad_norm: float = 0.5, normalize_advantage: bool = True,
                 anneal: bool = False, center_values: bool = False, shared_lstm: bool = False):
        rollout_size = n_steps * getattr(env, "num_envs", 1) if isinstance(n_steps, int) else None
        check(self.name, locals(), {
            **ACTOR_CRITIC_RANGES, "n_epochs": INT_AT_LEAST_1, "clip_range": POSITIVE,
            "clip_range_vf": Range(0, low_open=True, optional=True, none_means="no value clipping"),
            "batch_size": Range(1, rollout_size, integer=True, high_name="n_steps * num_envs")})
        super().__init__(env, seed, device, policy, list(hidden_sizes), n_steps, gamma, gae_lambda,
                         center_values, shared_lstm)
        self.learning_rate, self.batch_size, self.n_epochs = learning_rate, batch_size, n_epochs
        self.clip_range, self.clip_range_vf, self.ent_coef, self.vf_coef = clip_range, clip_range_vf, ent_coef, vf_coef
        self.max_grad_norm, self.normalize_advantage, self.anneal = max_grad_norm, normalize_advantage, anneal
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=learning_rate, eps=1e-5, fused=True)

    def learn(self, budget: Budget, callback: Callback | None = None) -> PPO:
        params = list(self.policy.parameters())
        while (rollout := self.collect(budget)) is not None:
            # linear schedules over the step budget (constant without one)
            remaining = 1.0 - self.env.env_steps / budget.env_steps if self.anneal and budget.env_steps else 1.0
            lr, clip = self.learning_rate * remaining, self.clip_range * remaining
            self.optimizer.param_groups[0]["lr"] = lr
            T, N = rollout.actions.shape
            stats: dict[str, list[torch.Tensor]] = {
                k: [] for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")}
            for _ in range(self.n_epochs):
                if self.policy.recurrent:  # minibatches of whole env sequences
                    envs_per_batch = max(1, self.batch_size // T)
                    order = torch.randperm(N, generator=self.generator)
                    batches = [(slice(None), order[i:i + envs_per_batch]) for i in range(0, N, envs_per_batch)]
                else:  # minibatches of (t, env) samples
                    order = torch.randperm(T * N, generator=self.generator)
                    batches = [(idx // N, idx % N) for idx in order.split(self.batch_size)]
                for t_idx, e_idx in batches:
                    r = rollout
                    masks = None if r.masks is None else r.masks[t_idx, e_idx]
                    initial = None if r.initial_state is None else tuple(x[e_idx] for x in r.initial_state)
                    new_logp, entropy, values = self.evaluate_actions(
                        r.obs[t_idx, e_idx], r.actions[t_idx, e_idx], masks, r.starts[t_idx, e_idx], initial)
                    old = [x[t_idx, e_idx] for x in (r.log_probs, r.advantages, r.returns, r.values)]
                    old_logp, adv, returns, old_values = (x.reshape(-1) for x in old)
                    new_logp, entropy, values = new_logp.reshape(-1), entropy.reshape(-1), values.reshape(-1)
                    if self.normalize_advantage and len(adv) > 1:
                        adv = (adv - adv.mean()) / (adv.std() + 1e-8)

                    log_ratio = new_logp - old_logp
                    ratio = log_ratio.exp()
                    policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
                    if self.clip_range_vf is None:
                        value_loss = ((values - returns) ** 2).mean()
                    else:
                        clipped = old_values + (values - old_values).clamp(-self.clip_range_vf, self.clip_range_vf)
                        value_loss = torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean()
                    loss = policy_loss + self.vf_coef * value_loss - self.ent_coef * entropy.mean()

                    self.optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(params, self.max_grad_norm)
                    self.optimizer.step()
                    with torch.no_grad():  # kept as tensors: one sync per rollout, not five per minibatch
                        stats["policy_loss"].append(policy_loss.detach())
                        stats["value_loss"].append(value_loss.detach())
                        stats["entropy"].append(entropy.mean().detach())
                        stats["approx_kl"].append(((ratio - 1) - log_ratio).mean())
                        stats["clip_fraction"].append(((ratio - 1).abs() > clip).float().mean())
            self.updates += 1
            means = torch.stack([torch.stack(v).mean() for v in stats.values()]).tolist()
            self.log_update({**dict(zip(stats, means, strict=True)), "learning_rate": lr,
                             "clip_range": clip,
                             "explained_variance": explained_variance(rollout.values.flatten(),
                                                                      rollout.returns.flatten())})
            if callback is not None:
                callback(self)
        return self

