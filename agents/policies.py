"""Networks and distributions shared by the actor-critic agents (PPO, A2C).

Action masks are applied where the distribution is made, so sampling, log-probabilities
and entropy all see only the legal actions.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
from torch import nn


def masked_categorical(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.distributions.Categorical:
    """Categorical over the legal actions: illegal logits become the most negative float,
    so their probability is exactly 0 and the entropy stays finite (no 0 * -inf)."""
    if mask is not None:
        logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    return torch.distributions.Categorical(logits=logits, validate_args=False)


def layer_init(layer: nn.Linear, gain: float = np.sqrt(2), bias: float = 0.0) -> nn.Linear:
    """Orthogonal init (the PPO implementation details of Engstrom et al. 2020, as in SB3)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp(sizes: list[int], out: int, out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in pairwise(sizes):
        layers += [layer_init(nn.Linear(a, b)), nn.Tanh()]
    return nn.Sequential(*layers, layer_init(nn.Linear(sizes[-1], out), out_gain))


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs (SB3's default for PPO and A2C), or an LSTM torso
    shared by both heads: the NAS controller of Zoph & Le, which carries the decisions
    made so far in its state.

    ``forward`` takes one time step for a batch of envs, plus (for the LSTM) the state and
    the flags of envs whose episode starts at this step, where the state is zeroed.
    """

    def __init__(self, obs_dim: int, num_actions: int, hidden: list[int], recurrent: bool = False):
        super().__init__()
        self.recurrent = recurrent
        if recurrent:
            size = hidden[0]
            self.encoder = nn.Sequential(layer_init(nn.Linear(obs_dim, size)), nn.Tanh())
            self.lstm = nn.LSTMCell(size, size)
            self.actor = layer_init(nn.Linear(size, num_actions), 0.01)
            self.critic = layer_init(nn.Linear(size, 1), 1.0)
        else:
            self.actor = mlp([obs_dim, *hidden], num_actions, 0.01)
            self.critic = mlp([obs_dim, *hidden], 1, 1.0)

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not self.recurrent:
            return None
        zeros = torch.zeros(batch, self.lstm.hidden_size, device=self.actor.weight.device)
        return zeros, zeros.clone()

    def forward(self, obs: torch.Tensor, state=None, starts: torch.Tensor | None = None):
        """Returns (logits, value, next state)."""
        if not self.recurrent:
            return self.actor(obs), self.critic(obs).squeeze(-1), None
        h, c = state
        if starts is not None:
            keep = (1.0 - starts).unsqueeze(-1)
            h, c = h * keep, c * keep
        h, c = self.lstm(self.encoder(obs), (h, c))
        return self.actor(h), self.critic(h).squeeze(-1), (h, c)
