"""Networks and masked distributions of the actor-critic agents."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class Categorical:
    """torch's Categorical arithmetic without its argument checks, which cost more than the sums."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits - logits.logsumexp(-1, keepdim=True)
        self._probs: torch.Tensor | None = None

    @property
    def probs(self) -> torch.Tensor:
        if self._probs is None:
            self._probs = torch.softmax(self.logits, -1)
        return self._probs

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.logits.clamp(min=torch.finfo(self.logits.dtype).min) * self.probs).sum(-1)


def masked_categorical(logits: torch.Tensor, mask: torch.Tensor | None) -> Categorical:
    """Illegal logits become the most negative float: probability 0, entropy finite."""
    if mask is not None:
        logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    return Categorical(logits)


EULER_GAMMA = 0.5772156649015329


class Kumaraswamy:
    """The Kumaraswamy distribution on [0, 1] (Kumaraswamy 1980), a Beta look-alike whose CDF
    ``1 - (1 - x^a)^b`` inverts in closed form: a draw is a function of one uniform from the
    agent's own generator, differentiable in ``a`` and ``b`` (Dreamer V1 backpropagates
    through it), and a resumed run draws what an uninterrupted one would.

        log p(x) = log a + log b + (a - 1) log x + (b - 1) log(1 - x^a)
        H        = (1 - 1/b) + (1 - 1/a) H_b - log(a b),   H_b = psi(b + 1) + gamma
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        self.a, self.b = a, b

    @classmethod
    def from_outputs(cls, out: torch.Tensor) -> Kumaraswamy:
        """From a network's two outputs (..., 2): ``a, b = 1 + softplus(out)``, unimodal, never a spike at an end."""
        return cls(*(1.0 + F.softplus(out)).unbind(-1))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clamp(1e-6, 1 - 1e-6)
        a, b = self.a, self.b
        return a.log() + b.log() + (a - 1) * x.log() + (b - 1) * torch.log1p(-x.pow(a)).clamp_min(-1e6)

    def entropy(self) -> torch.Tensor:
        a, b = self.a, self.b
        return (1 - 1 / b) + (1 - 1 / a) * (torch.digamma(b + 1) + EULER_GAMMA) - torch.log(a * b)

    def rsample(self, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(self.a.shape, generator=generator, device=generator.device).to(self.a.device)
        return (1 - (1 - u).pow(1 / self.b)).pow(1 / self.a).clamp(0.0, 1.0)

    def mode(self) -> torch.Tensor:
        """``((a - 1) / (a b - 1))^(1/a)``; its median where that is flat (a = b = 1)."""
        a, b = self.a, self.b
        flat = (a * b - 1).abs() < 1e-6
        mode = ((a - 1) / (a * b - 1).clamp_min(1e-6)).clamp_min(0).pow(1 / a)
        return torch.where(flat, (1 - 0.5 ** (1 / b)).pow(1 / a), mode)


class Hybrid:
    """A parameterised action, row by row: a choice (a masked :class:`Categorical`) or a value
    in [0, 1] (a :class:`Kumaraswamy`), as ``value_step`` says. Actions are floats: a
    choice's index, or the value. A row's log-probability and entropy are its used part's; a
    value's is a density, so PPO's ratio of two of them is as meaningful as of two
    probabilities."""

    def __init__(self, logits: torch.Tensor, mask: torch.Tensor | None, value_params: torch.Tensor,
                 value_step: torch.Tensor):
        self.choice = masked_categorical(logits, mask) if logits.shape[-1] else None
        self.value = Kumaraswamy.from_outputs(value_params)
        self.value_step = value_step

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        value = self.value.log_prob(actions)
        if self.choice is None:
            return value
        return torch.where(self.value_step, value, self.choice.log_prob(torch.where(self.value_step, 0, actions)))

    def entropy(self) -> torch.Tensor:
        value = self.value.entropy()
        return value if self.choice is None else torch.where(self.value_step, value, self.choice.entropy())

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        values = self.value.rsample(generator).detach()
        if self.choice is None:
            return values
        return torch.where(self.value_step, values, sample(self.choice, generator).float())

    def mode(self) -> torch.Tensor:
        values = self.value.mode()
        if self.choice is None:
            return values
        return torch.where(self.value_step, values, self.choice.probs.argmax(-1).float())


class ActionHead:
    """Where an action space's parts sit on a policy's outputs: ``choices`` logits, then, if
    a decision may be a value, the two parameters of its Kumaraswamy. A value step is one
    whose mask allows no choice (an rlnas NASEnv's convention)."""

    def __init__(self, space: gym.Space, owner: str):
        if isinstance(space, gym.spaces.Discrete):
            self.choices, self.values = int(space.n), False
        elif _unit_box(space):
            self.choices, self.values = 0, True
        elif (isinstance(space, gym.spaces.Tuple) and len(space) == 2 and isinstance(space[0], gym.spaces.Discrete)
              and _unit_box(space[1])):
            self.choices, self.values = int(space[0].n), True
        else:
            raise TypeError(f"{owner} needs a Discrete action space, a Box of one value in [0, 1], or the Tuple of "
                            f"both (an rlnas NASEnv's), got {space}")
        self.size = self.choices + 2 * self.values

    def distribution(self, out: torch.Tensor, mask: torch.Tensor | None) -> Categorical | Hybrid:
        if not self.values:
            return masked_categorical(out, mask)
        if mask is None or not self.choices:
            value_step = torch.full(out.shape[:-1], not self.choices, dtype=torch.bool, device=out.device)
        else:
            value_step = ~mask.any(-1)
        return Hybrid(out[..., :self.choices], mask, out[..., self.choices:], value_step)

    def draw(self, dist: Categorical | Hybrid, generator: torch.Generator, deterministic: bool = False):
        """Actions of every row: a sample, or the most likely."""
        if isinstance(dist, Hybrid):
            return dist.mode() if deterministic else dist.sample(generator)
        return dist.probs.argmax(-1) if deterministic else sample(dist, generator)

    def to_env(self, actions: torch.Tensor, dist: Categorical | Hybrid) -> Any:
        """A batch of actions as a vector env of this space takes them: each part filled, the
        unused one with 0."""
        if not self.values:
            return actions.cpu().numpy()
        values = torch.where(dist.value_step, actions, 0.0).cpu().numpy().astype(np.float32).reshape(-1, 1)
        if not self.choices:
            return values
        return torch.where(dist.value_step, 0, actions.long()).cpu().numpy(), values

    def one(self, action: torch.Tensor, dist: Categorical | Hybrid) -> int | float:
        """One row's action as a single env takes it (an int choice or a float value)."""
        if isinstance(dist, Hybrid) and bool(dist.value_step.reshape(-1)[0]):
            return float(action.reshape(-1)[0])
        return int(action.reshape(-1)[0])


def _unit_box(space: gym.Space) -> bool:
    return (isinstance(space, gym.spaces.Box) and space.shape == (1,) and float(space.low[0]) == 0.0
            and float(space.high[0]) == 1.0)


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


def sample(dist: Categorical, generator: torch.Generator) -> torch.Tensor:
    """One action per row, from the agent's checkpointed generator (resumes draw the same)."""
    return torch.multinomial(dist.probs.detach().cpu(), 1, generator=generator).squeeze(-1).to(dist.probs.device)


State = tuple[torch.Tensor, torch.Tensor]


class LSTMController(nn.Module):
    """Zoph & Le's controller: obs -> tanh(linear) -> LSTM cell -> logits, zeroed at ``starts``."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_size: int, head_gain: float = 0.01):
        super().__init__()
        self.encoder = nn.Sequential(layer_init(nn.Linear(obs_dim, hidden_size)), nn.Tanh())
        self.lstm = nn.LSTMCell(hidden_size, hidden_size)
        self.actor = layer_init(nn.Linear(hidden_size, num_actions), head_gain)

    def initial_state(self, batch: int) -> State:
        zeros = torch.zeros(batch, self.lstm.hidden_size, device=self.actor.weight.device)
        return zeros, zeros.clone()

    def forward(self, obs: torch.Tensor, state: State | None, starts: torch.Tensor | None = None):
        """Returns (logits, next state)."""
        h, c = state if state is not None else self.initial_state(len(obs))
        if starts is not None:
            keep = (1.0 - starts).unsqueeze(-1)
            h, c = h * keep, c * keep
        h, c = self.lstm(self.encoder(obs), (h, c))
        return self.actor(h), (h, c)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs (SB3's default), or the LSTM controller with a value
    head on its state (``shared_lstm``) or a critic LSTM of its own (RecurrentPPO's default;
    the two states side by side on the last axis, so they slice per env as one)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: list[int], recurrent: bool = False,
                 shared_lstm: bool = False):
        super().__init__()
        self.recurrent, self.shared_lstm = recurrent, shared_lstm
        if recurrent:
            self.controller = LSTMController(obs_dim, num_actions, hidden[0])
            if shared_lstm:
                self.critic = layer_init(nn.Linear(hidden[0], 1), 1.0)
            else:  # its one-output head (``actor`` in LSTMController, a checkpoint key) is the value
                self.critic = LSTMController(obs_dim, 1, hidden[0], head_gain=1.0)
        else:
            self.actor = mlp([obs_dim, *hidden], num_actions, 0.01)
            self.critic = mlp([obs_dim, *hidden], 1, 1.0)

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True, assign: bool = False):
        """Refuses, by the setting's name, a checkpoint with the other critic (torch would only list keys)."""
        saved = "critic.weight" in state  # a value head on the actor's LSTM (every run before the option)
        if self.recurrent and saved != self.shared_lstm:
            raise ValueError(f"the checkpoint was saved with shared_lstm={saved}, this agent has "
                             f"shared_lstm={self.shared_lstm}: set agent.shared_lstm: {str(saved).lower()} "
                             f"in the run's config.yaml")
        return super().load_state_dict(state, strict, assign)

    def initial_state(self, batch: int) -> State | None:
        if not self.recurrent:
            return None
        if self.shared_lstm:
            return self.controller.initial_state(batch)
        return tuple(torch.cat(pair, -1) for pair in zip(self.controller.initial_state(batch),
                                                          self.critic.initial_state(batch), strict=True))

    def forward(self, obs: torch.Tensor, state: State | None = None, starts: torch.Tensor | None = None):
        """Returns (logits, value, next state)."""
        if not self.recurrent:
            return self.actor(obs), self.critic(obs).squeeze(-1), None
        if self.shared_lstm:
            logits, state = self.controller(obs, state, starts)
            return logits, self.critic(state[0]).squeeze(-1), state
        (h, c) = state if state is not None else self.initial_state(len(obs))
        actor_h, critic_h = h.chunk(2, -1)
        actor_c, critic_c = c.chunk(2, -1)
        logits, (actor_h, actor_c) = self.controller(obs, (actor_h, actor_c), starts)
        value, (critic_h, critic_c) = self.critic(obs, (critic_h, critic_c), starts)
        return logits, value.squeeze(-1), (torch.cat([actor_h, critic_h], -1), torch.cat([actor_c, critic_c], -1))
