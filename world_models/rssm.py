"""The recurrent state-space model of Dreamer (Hafner et al. 2019, 2020).

A state is a deterministic GRU path ``deter`` plus a stochastic part ``stoch``:

* V1: ``stoch`` is a diagonal Gaussian (``stoch_size`` dims), sampled by reparameterisation.
* V2: ``stoch`` is ``groups`` categorical variables of ``classes`` classes each, sampled as
  one-hot vectors with straight-through gradients: ``sample + probs - stop_grad(probs)``.

The prior predicts ``stoch`` from ``deter`` alone (imagination); the posterior also sees
the observation's embedding (filtering). ``kl_loss`` ties them together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class State:
    deter: torch.Tensor  # (..., deter_size)
    stoch: torch.Tensor  # (..., stoch_dim), flat
    stats: torch.Tensor  # (..., 2 * stoch_size) mean and std for Gaussian, (..., groups, classes) logits

    @property
    def feature(self) -> torch.Tensor:
        """What every head and the actor-critic read."""
        return torch.cat([self.deter, self.stoch], -1)

    def detach(self) -> State:
        return State(self.deter.detach(), self.stoch.detach(), self.stats.detach())

    def flatten(self) -> State:
        """``(T, B, ...)`` -> ``(T * B, ...)``: every state of a batch of sequences."""
        return State(*(t.reshape(-1, *t.shape[2:]) for t in (self.deter, self.stoch, self.stats)))

    @staticmethod
    def stack(states: list[State], dim: int = 0) -> State:
        return State(*(torch.stack([getattr(s, f) for s in states], dim) for f in ("deter", "stoch", "stats")))


def straight_through_onehot(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Gumbel-max one-hot sample with the probabilities' gradient: ``sample + probs - sg(probs)``."""
    probs = logits.softmax(-1)
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-20, 1.0)
    index = (logits.detach() - torch.log(-torch.log(uniform))).argmax(-1)
    sample = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
    return sample + probs - probs.detach()


class RSSM(nn.Module):
    def __init__(self, action_dim: int, embed_dim: int, deter_size: int = 600, hidden_size: int = 600,
                 latent: str = "categorical", stoch_size: int = 32, classes: int = 32, min_std: float = 0.1):
        super().__init__()
        if latent not in ("gaussian", "categorical"):
            raise ValueError(f"latent must be 'gaussian' (Dreamer V1) or 'categorical' (V2), got {latent!r}")
        self.latent, self.stoch_size, self.classes, self.min_std = latent, stoch_size, classes, min_std
        self.deter_size = deter_size
        self.stoch_dim = stoch_size * classes if latent == "categorical" else stoch_size
        stats_dim = self.stoch_dim if latent == "categorical" else 2 * stoch_size
        self.img_in = nn.Sequential(nn.Linear(self.stoch_dim + action_dim, hidden_size), nn.ELU())
        self.gru = nn.GRUCell(hidden_size, deter_size)
        self.prior_head = nn.Sequential(nn.Linear(deter_size, hidden_size), nn.ELU(), nn.Linear(hidden_size, stats_dim))
        self.post_head = nn.Sequential(nn.Linear(deter_size + embed_dim, hidden_size), nn.ELU(),
                                       nn.Linear(hidden_size, stats_dim))

    @property
    def feature_size(self) -> int:
        return self.deter_size + self.stoch_dim

    def initial(self, batch: int, device: torch.device | str = "cpu") -> State:
        zeros = torch.zeros(batch, self.deter_size, device=device)
        categorical = self.latent == "categorical"
        stats_shape = (batch, self.stoch_size, self.classes) if categorical else (batch, 2 * self.stoch_size)
        return State(zeros, torch.zeros(batch, self.stoch_dim, device=device), torch.zeros(stats_shape, device=device))

    def _state(self, deter: torch.Tensor, raw: torch.Tensor, generator: torch.Generator | None,
               sample: bool = True) -> State:
        """``sample=False`` takes the mode (the most likely class, the mean) instead of a sample."""
        if self.latent == "categorical":
            logits = raw.reshape(*raw.shape[:-1], self.stoch_size, self.classes)
            onehot = straight_through_onehot(logits, generator) if sample else \
                F.one_hot(logits.argmax(-1), self.classes).to(logits.dtype)
            return State(deter, onehot.flatten(-2), logits)
        mean, std = raw.chunk(2, -1)
        std = F.softplus(std) + self.min_std
        stoch = mean + std * torch.randn(mean.shape, generator=generator, device=mean.device) if sample else mean
        return State(deter, stoch, torch.cat([mean, std], -1))

    def img_step(self, prev: State, action: torch.Tensor, generator: torch.Generator | None = None) -> State:
        """The prior: one step of imagination from ``prev`` under ``action`` (one-hot)."""
        deter = self.gru(self.img_in(torch.cat([prev.stoch, action], -1)), prev.deter)
        return self._state(deter, self.prior_head(deter), generator)

    def obs_step(self, prev: State, action: torch.Tensor, embed: torch.Tensor,
                 generator: torch.Generator | None = None, sample: bool = True) -> tuple[State, State]:
        """Posterior and prior of the next state given ``embed`` (``sample=False``: the mode)."""
        prior = self.img_step(prev, action, generator)
        post = self._state(prior.deter, self.post_head(torch.cat([prior.deter, embed], -1)), generator, sample)
        return post, prior

    def observe(self, embeds: torch.Tensor, actions: torch.Tensor, firsts: torch.Tensor,
                state: State | None = None, generator: torch.Generator | None = None,
                sample: bool = True) -> tuple[State, State]:
        """Filter sequences ``(T, B, ...)``, resetting where ``firsts`` marks an episode start
        (``sample=False``: the posterior's mode)."""
        state = state or self.initial(embeds.shape[1], embeds.device)
        posts, priors = [], []
        for t in range(embeds.shape[0]):
            keep = (1.0 - firsts[t].float()).unsqueeze(-1)
            state = State(state.deter * keep, state.stoch * keep, state.stats)
            post, prior = self.obs_step(state, actions[t] * keep, embeds[t], generator, sample)
            posts.append(post)
            priors.append(prior)
            state = post
        return State.stack(posts), State.stack(priors)

    # -- KL ------------------------------------------------------------------------------
    def kl(self, post_stats: torch.Tensor, prior_stats: torch.Tensor) -> torch.Tensor:
        """KL(post || prior) per state (summed over latent dimensions or groups)."""
        if self.latent == "categorical":
            post_logp, prior_logp = post_stats.log_softmax(-1), prior_stats.log_softmax(-1)
            return (post_logp.exp() * (post_logp - prior_logp)).sum((-2, -1))
        (pm, ps), (qm, qs) = post_stats.chunk(2, -1), prior_stats.chunk(2, -1)
        return (torch.log(qs / ps) + (ps**2 + (pm - qm) ** 2) / (2 * qs**2) - 0.5).sum(-1)

    def kl_loss(self, post: State, prior: State, balance: float | None,
                free_nats: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The KL term and the plain KL (for logging): V1 ``max(KL(post || prior), free)``;
        V2 ``alpha max(KL(sg(post) || prior), free) + (1 - alpha) max(KL(post || sg(prior)), free)``."""
        value = self.kl(post.stats, prior.stats).mean()
        free = torch.tensor(free_nats, device=value.device)
        if balance is None:
            return torch.maximum(value, free), value
        to_prior = self.kl(post.stats.detach(), prior.stats).mean()
        to_post = self.kl(post.stats, prior.stats.detach()).mean()
        return balance * torch.maximum(to_prior, free) + (1 - balance) * torch.maximum(to_post, free), value

    def entropy(self, stats: torch.Tensor) -> torch.Tensor:
        if self.latent == "categorical":
            logp = stats.log_softmax(-1)
            return -(logp.exp() * logp).sum((-2, -1))
        _, std = stats.chunk(2, -1)
        return (0.5 + 0.5 * torch.log(torch.tensor(2 * torch.pi)) + torch.log(std)).sum(-1)
