"""PPO-clip (Schulman et al. 2017), read top to bottom.

Each iteration collects ``n_steps`` from every env (agents/on_policy.py), then takes
``n_epochs`` passes of minibatch steps on

    L = -E[min(r A, clip(r, 1 - eps, 1 + eps) A)] + vf_coef * E[(V - R)^2] - ent_coef * E[H]

with r = pi(a|s) / pi_old(a|s), optional value clipping, and learning rate and clip range
annealed linearly to 0 (SB3's ``lin_`` schedules). With the LSTM policy a minibatch is a
set of whole env sequences, replayed from the rollout's initial state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from rlnas.agents.base import Callback
from rlnas.agents.on_policy import ActorCriticAgent, ActorCriticConfig, explained_variance
from rlnas.core.settings import INT_AT_LEAST_1, POSITIVE, Range, check, setting
from rlnas.envs.monitor import Budget


@dataclass
class PPOConfig(ActorCriticConfig):
    """SB3's defaults. ``nas``: an LSTM controller (Zoph & Le) with a centred critic LSTM,
    gamma 1, an update per NB201 cell on unnormalised Monte-Carlo advantages (one episode's
    steps share one return) (docs/benchmarks.md, "Every agent on NB201"). ``cartpole``: RL-Zoo's."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(policy="lstm", hidden_sizes=[64], learning_rate=0.01, n_steps=6, batch_size=6, n_epochs=4,
                    gamma=1.0, gae_lambda=1.0, ent_coef=0.005, max_grad_norm=5.0, normalize_advantage=False,
                    center_values=True),
        "cartpole": dict(learning_rate=1e-3, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
                         anneal=True),
    }
    batch_size: int = setting(64, "minibatch size (at most n_steps * num_envs)", INT_AT_LEAST_1)
    n_epochs: int = setting(10, "passes over each rollout", INT_AT_LEAST_1)
    clip_range: float = setting(0.2, "the policy ratio's clip, epsilon", POSITIVE)
    clip_range_vf: float | None = setting(None, "clip of the value change per update",
                                          Range(0, low_open=True, none_means="no value clipping"))


class PPO(ActorCriticAgent):
    Config = PPOConfig
    name = "ppo"
    config: PPOConfig

    def __init__(self, env, config: PPOConfig | None = None, seed: int = 0, device: str = "cpu", **settings):
        super().__init__(env, config, seed, device, **settings)
        c = self.config
        check(c.owner, vars(c), {"batch_size": Range(1, c.n_steps * self.num_envs, integer=True,
                                                     high_name="n_steps * num_envs")})
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=c.learning_rate, eps=1e-5, fused=True)

    def learn(self, budget: Budget, callback: Callback | None = None) -> PPO:
        params, c = list(self.policy.parameters()), self.config
        while (rollout := self.collect(budget)) is not None:
            # linear schedules over the step budget (constant without one)
            remaining = 1.0 - self.env.env_steps / budget.env_steps if c.anneal and budget.env_steps else 1.0
            lr, clip = c.learning_rate * remaining, c.clip_range * remaining
            self.optimizer.param_groups[0]["lr"] = lr
            T, N = rollout.actions.shape
            stats: dict[str, list[torch.Tensor]] = {
                k: [] for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")}
            for _ in range(c.n_epochs):
                if self.policy.recurrent:  # minibatches of whole env sequences
                    envs_per_batch = max(1, c.batch_size // T)
                    order = torch.randperm(N, generator=self.generator)
                    batches = [(slice(None), order[i:i + envs_per_batch]) for i in range(0, N, envs_per_batch)]
                else:  # minibatches of (t, env) samples
                    order = torch.randperm(T * N, generator=self.generator)
                    batches = [(idx // N, idx % N) for idx in order.split(c.batch_size)]
                for t_idx, e_idx in batches:
                    r = rollout
                    masks = None if r.masks is None else r.masks[t_idx, e_idx]
                    initial = None if r.initial_state is None else tuple(x[e_idx] for x in r.initial_state)
                    new_logp, entropy, values = self.evaluate_actions(
                        r.obs[t_idx, e_idx], r.actions[t_idx, e_idx], masks, r.starts[t_idx, e_idx], initial)
                    old = [x[t_idx, e_idx] for x in (r.log_probs, r.advantages, r.returns, r.values)]
                    old_logp, adv, returns, old_values = (x.reshape(-1) for x in old)
                    new_logp, entropy, values = new_logp.reshape(-1), entropy.reshape(-1), values.reshape(-1)
                    if c.normalize_advantage and len(adv) > 1:
                        adv = (adv - adv.mean()) / (adv.std() + 1e-8)

                    log_ratio = new_logp - old_logp
                    ratio = log_ratio.exp()
                    policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
                    if c.clip_range_vf is None:
                        value_loss = ((values - returns) ** 2).mean()
                    else:
                        clipped = old_values + (values - old_values).clamp(-c.clip_range_vf, c.clip_range_vf)
                        value_loss = torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean()
                    loss = policy_loss + c.vf_coef * value_loss - c.ent_coef * entropy.mean()

                    self.optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(params, c.max_grad_norm)
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

