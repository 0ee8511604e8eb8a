"""A Dreamer world model for vector observations: encoder, RSSM, and the heads that
predict what the env would say: the observation, the reward, whether the episode goes
on, and (for envs with action masks) which actions are legal.

The legal-action head is how imagination honours masks: a latent state carries no env to
ask, so the model learns the mask as a per-action Bernoulli from ``info["action_mask"]``,
like the reward. Deriving masks from the latent would need each env's rules; predicting
them works for any masked env, and on NASEnv the rule (which decision comes next) is
written in the observation, which the latent must encode anyway.
"""

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
                 predict_mask: bool = False):
        super().__init__()
        self.encoder = mlp(obs_dim, hidden_size, embed_size)
        self.rssm = rssm
        feature = rssm.feature_size
        self.decoder = mlp(feature, hidden_size, obs_dim)
        self.reward = mlp(feature, hidden_size, 1)
        self.cont = mlp(feature, hidden_size, 1)
        self.mask = mlp(feature, hidden_size, action_dim) if predict_mask else None

    def legal(self, feature: torch.Tensor) -> torch.Tensor | None:
        """Predicted legal actions (bool), at least one per state; None without a mask head."""
        if self.mask is None:
            return None
        legal = self.mask(feature) > 0.0
        return legal | ~legal.any(-1, keepdim=True)

    def loss(self, batch: dict[str, torch.Tensor], kl_balance: float | None, free_nats: float, kl_scale: float,
             reward_scale: float = 1.0, discount_scale: float = 1.0, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, State, dict[str, float]]:
        """The world-model loss on sequences ``(T, B, ...)``; returns it, the posterior
        states (the starts of imagination) and the terms for logging.

        Reward and continuation at step t are predicted from the state at t (the reward
        received on arriving there; whether the episode goes on after it). ``reward_scale``
        weighs the reward term (V2's ``loss_scales.reward``): scores that differ by a
        percent need it raised before the reward head matters beside reconstruction.
        ``discount_scale`` weighs the continuation term (V2's ``loss_scales.discount``, 5 on
        Atari): terminals are rare, and where reward is constant, as on CartPole, they are
        the only thing that tells a good state from a bad one.
        """
        embeds = self.encoder(batch["obs"])
        post, prior = self.rssm.observe(embeds, batch["actions"], batch["firsts"], generator=generator)
        feature = post.feature
        recon = 0.5 * (self.decoder(feature) - batch["obs"]).pow(2).sum(-1).mean()
        reward = 0.5 * (self.reward(feature).squeeze(-1) - batch["rewards"]).pow(2).mean()
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
