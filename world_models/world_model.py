"""A Dreamer world model for vector observations: encoder, RSSM, and heads for the
observation, the reward, continuation and (on masked envs) the legal actions, learnt as a
per-action Bernoulli from ``info["action_mask"]``: a latent state has no env to ask.

The reward head may be an ensemble of ``reward_heads`` networks, each fitted to every
reward from its own initialisation: where the data pin the reward down they agree, away
from it they disagree, and one head's view is a draw of what the reward could be (the
ensemble as a posterior, as in Osband et al. 2016's bootstrapped DQN, without the bootstrap)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from rlnas.world_models.rssm import RSSM, State


def mlp(inp: int, hidden: int, out: int, layers: int = 2) -> nn.Sequential:
    sizes = [inp] + [hidden] * layers
    body = [m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), nn.ELU())]
    return nn.Sequential(*body, nn.Linear(sizes[-1], out))


class WorldModel(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, rssm: RSSM, hidden_size: int = 400, embed_size: int = 400,
                 predict_mask: bool = False, reward_heads: int = 1):
        super().__init__()
        self.encoder = mlp(obs_dim, hidden_size, embed_size)
        self.rssm = rssm
        feature = rssm.feature_size
        self.decoder = mlp(feature, hidden_size, obs_dim)
        self.rewards = nn.ModuleList(mlp(feature, hidden_size, 1) for _ in range(reward_heads))
        self.cont = mlp(feature, hidden_size, 1)
        self.mask = mlp(feature, hidden_size, action_dim) if predict_mask else None

    def reward_heads(self, feature: torch.Tensor) -> torch.Tensor:
        """Every head's reward ``(..., heads)``."""
        return torch.cat([head(feature) for head in self.rewards], -1)

    def reward(self, feature: torch.Tensor) -> torch.Tensor:
        """The ensemble's mean reward ``(..., 1)``: what imagination trains the actor and critic on."""
        return self.reward_heads(feature).mean(-1, keepdim=True)

    def legal(self, feature: torch.Tensor) -> torch.Tensor | None:
        """Predicted legal actions (bool), at least one per state; None without a mask head."""
        if self.mask is None:
            return None
        legal = self.mask(feature) > 0.0
        return legal | ~legal.any(-1, keepdim=True)

    def value_step(self, feature: torch.Tensor) -> torch.Tensor:
        """Predicted value steps (bool): states where no choice is legal (an rlnas env's mask is zero there)."""
        return ~(self.mask(feature) > 0.0).any(-1)

    def loss(self, batch: dict[str, torch.Tensor], kl_balance: float | None, free_nats: float, kl_scale: float,
             reward_scale: float = 1.0, discount_scale: float = 1.0, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, State, dict[str, float]]:
        """The loss on sequences ``(T, B, ...)``, the posterior states and the logged terms;
        reward and continuation at t come from the state at t, weighed by ``reward_scale``
        and ``discount_scale`` (V2's ``loss_scales``)."""
        embeds = self.encoder(batch["obs"])
        post, prior = self.rssm.observe(embeds, batch["actions"], batch["firsts"], generator=generator)
        feature = post.feature
        recon = 0.5 * (self.decoder(feature) - batch["obs"]).pow(2).sum(-1).mean()
        reward = 0.5 * (self.reward_heads(feature) - batch["rewards"][..., None]).pow(2).mean()  # each head's
        cont = F.binary_cross_entropy_with_logits(self.cont(feature).squeeze(-1), 1.0 - batch["terminals"])
        kl, kl_value = self.rssm.kl_loss(post, prior, kl_balance, free_nats)
        loss = recon + reward_scale * reward + discount_scale * cont + kl_scale * kl
        terms = {"recon_loss": recon.item(), "reward_loss": reward.item(), "discount_loss": cont.item(),
                 "kl": kl_value.item(), "prior_entropy": self.rssm.entropy(prior.stats).mean().item(),
                 "posterior_entropy": self.rssm.entropy(post.stats).mean().item()}
        if self.mask is not None and "masks" in batch:
            mask_loss = F.binary_cross_entropy_with_logits(self.mask(feature), batch["masks"])
            loss = loss + mask_loss
            terms["mask_loss"] = mask_loss.item()
        return loss, post, terms
