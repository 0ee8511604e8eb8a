"""Dreamer V1 (Hafner et al. 2019, "Dream to Control") and V2 (Hafner et al. 2020,
"Mastering Atari with Discrete World Models"): learn a world model from replayed
sequences, then train an actor and a critic on trajectories imagined in its latent space.

One loop, top to bottom:

1. act in the env: filter the observation into the RSSM posterior, sample the actor's
   action among the legal ones (``info["action_mask"]``), store the step;
2. every ``train_every`` steps, ``train_steps`` times (the papers' schedule), or
   ``updates_per_evaluation`` times after each episode that built a new architecture (the
   NAS schedule: a repeat costs no evaluation, teaches nothing, and is not even stored, so
   compute follows the evaluations paid for): sample ``batch_size`` sequences of
   ``seq_len`` steps, fit the world model (reconstruction + reward + continuation + KL,
   with V2's KL balancing and free nats), imagine ``horizon`` steps from every posterior
   state with the actor (legal actions predicted by the model's mask head), and
   * critic: regress ``v(s_t)`` on the lambda-return ``R_t = r_t + d_t ((1 - lambda) v(s_{t+1})
     + lambda R_{t+1})``, ``R_H = v(s_H)`` (V1 eq. 6), values from a slow target critic;
   * actor: ``-w_t [rho log pi(a_t|s_t) sg(R_t - v(s_t)) + (1 - rho) R_t + eta H(pi(.|s_t))]``,
     ``w_t`` the imagined probability of being alive, discounted. ``rho = 1`` (REINFORCE)
     is V2's choice for discrete actions; ``rho = 0`` is V1's dynamics backpropagation,
     the return's gradient flowing through the straight-through actions and the model.

``version`` picks the paper: its latents, KL form and defaults (``PAPER_DEFAULTS``); any
hyperparameter given explicitly overrides its paper's value.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.agents.architecture_agent import Proposer
from rlnas.agents.base import Agent, Callback
from rlnas.agents.registry import register
from rlnas.monitor import Budget
from rlnas.ranges import INT_AT_LEAST_0, INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, UNIT, OneOf, Range, check
from rlnas.spaces import Decisions
from rlnas.world_models.rssm import RSSM, State, straight_through_onehot
from rlnas.world_models.world_model import WorldModel, mlp

# The papers' published settings: V1 from "Dream to Control" (Appendix A, continuous
# control), V2 from "Mastering Atari with Discrete World Models" (Appendix, Atari: discrete
# actions). V1's 5,000-step prefill and train-every-1000 x 100 equal a train ratio of 1:10.
PAPER_DEFAULTS: dict[int, dict[str, Any]] = {
    1: dict(latent="gaussian", deter_size=200, hidden_size=200, stoch_size=30, classes=1, units=400,
            kl_balance=None, free_nats=3.0, kl_scale=1.0, reward_scale=1.0, discount_scale=1.0,
            model_lr=6e-4, actor_lr=8e-5, critic_lr=8e-5, adam_eps=1e-7, grad_clip=100.0,
            horizon=15, gamma=0.99, lambda_=0.95, entropy=0.0, rho=0.0, target_every=100,
            batch_size=50, seq_len=50, train_every=1000, train_steps=100, prefill=5000,
            buffer_size=1_000_000, updates_per_evaluation=None),
    2: dict(latent="categorical", deter_size=600, hidden_size=600, stoch_size=32, classes=32, units=400,
            kl_balance=0.8, free_nats=0.0, kl_scale=0.1, reward_scale=1.0, discount_scale=5.0,
            model_lr=2e-4, actor_lr=4e-5, critic_lr=1e-4, adam_eps=1e-5, grad_clip=100.0,
            horizon=15, gamma=0.999, lambda_=0.95, entropy=1e-3, rho=1.0, target_every=100,
            batch_size=16, seq_len=50, train_every=16, train_steps=1, prefill=50_000,
            buffer_size=2_000_000, updates_per_evaluation=None),
}

# What each setting may be (None given to the constructor means the paper's value, so only
# the two keys whose paper value is None take it).
RANGES = {
    "latent": OneOf(("gaussian", "categorical")), **dict.fromkeys(
        ("deter_size", "hidden_size", "stoch_size", "classes", "units", "horizon", "target_every", "batch_size",
         "seq_len", "train_every", "train_steps", "buffer_size"), INT_AT_LEAST_1),
    "kl_balance": Range(0, 1, optional=True, none_means="no balancing, V1's KL"),
    **dict.fromkeys(("free_nats", "kl_scale", "reward_scale", "discount_scale", "entropy"), NON_NEGATIVE),
    **dict.fromkeys(("model_lr", "actor_lr", "critic_lr", "adam_eps", "grad_clip"), POSITIVE),
    **dict.fromkeys(("gamma", "lambda_", "rho"), UNIT), "prefill": INT_AT_LEAST_0,
    "updates_per_evaluation": Range(1, integer=True, optional=True,
                                    none_means="the papers' per-step schedule, train_every and train_steps"),
}


def lambda_returns(rewards: torch.Tensor, values: torch.Tensor, discounts: torch.Tensor,
                   lambda_: float) -> torch.Tensor:
    """``R_t = r_t + d_t ((1 - lambda) v_{t+1} + lambda R_{t+1})`` with ``R_H = v_H``.

    ``rewards`` and ``discounts`` are ``(H, ...)`` (the transition out of step t),
    ``values`` is ``(H + 1, ...)``; returns ``(H, ...)``.
    """
    returns = []
    last = values[-1]
    for t in reversed(range(rewards.shape[0])):
        last = rewards[t] + discounts[t] * ((1 - lambda_) * values[t + 1] + lambda_ * last)
        returns.append(last)
    return torch.stack(returns[::-1])


class SequenceReplay:
    """Steps in arrival order; ``sample`` draws windows of consecutive steps (episode
    starts inside a window are marked by ``firsts``, where the RSSM resets)."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int):
        self.capacity, self.size, self.head = capacity, 0, 0
        self.data = {"obs": np.zeros((capacity, obs_dim), np.float32), "actions": np.zeros(capacity, np.int64),
                     "rewards": np.zeros(capacity, np.float32), "terminals": np.zeros(capacity, np.float32),
                     "firsts": np.zeros(capacity, np.float32), "masks": np.ones((capacity, action_dim), np.float32)}
        self.action_dim = action_dim

    def add(self, obs: np.ndarray, action: int, reward: float, terminal: bool, first: bool,
            mask: np.ndarray | None) -> None:
        """``action`` is the one that led to ``obs`` (-1 at an episode's first step)."""
        i = self.head
        self.data["obs"][i], self.data["actions"][i], self.data["rewards"][i] = obs, action, reward
        self.data["terminals"][i], self.data["firsts"][i] = terminal, first
        self.data["masks"][i] = 1.0 if mask is None else mask
        self.head, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)

    def sample(self, batch: int, length: int, rng: np.random.Generator,
               device: torch.device) -> dict[str, torch.Tensor]:
        oldest = self.head if self.size == self.capacity else 0
        starts = rng.integers(0, self.size - length + 1, batch)
        idx = (oldest + starts[None, :] + np.arange(length)[:, None]) % self.capacity  # (T, B)
        out = {k: torch.as_tensor(v[idx], device=device) for k, v in self.data.items()}
        actions = out.pop("actions")
        out["actions"] = F.one_hot(actions.clamp(min=0), self.action_dim).float() * (actions >= 0).unsqueeze(-1)
        out["firsts"][0] = 1.0  # a window starts from the zero state, as an episode does
        return out

    def state(self) -> dict[str, Any]:
        """The filled rows only (until the buffer wraps they are the first ``size``): a
        checkpoint early in a search stays small whatever the capacity."""
        return {"size": self.size, "head": self.head,
                **{k: torch.as_tensor(v[:self.size]) for k, v in self.data.items()}}

    def load(self, state: dict[str, Any]) -> None:
        self.size, self.head = state["size"], state["head"]
        for k in self.data:
            self.data[k][:self.size] = state[k].numpy()


class Dreamer(Proposer, Agent):
    """Dreamer on any env with a flat ``Box`` observation and a ``Discrete`` action space."""

    default_version = 2

    def __init__(self, env: gym.Env, seed: int = 0, device: str = "cpu", version: int | None = None,
                 latent: str | None = None, deter_size: int | None = None, hidden_size: int | None = None,
                 stoch_size: int | None = None, classes: int | None = None, units: int | None = None,
                 kl_balance: float | None = None, free_nats: float | None = None, kl_scale: float | None = None,
                 reward_scale: float | None = None, discount_scale: float | None = None,
                 model_lr: float | None = None, actor_lr: float | None = None, critic_lr: float | None = None,
                 adam_eps: float | None = None, grad_clip: float | None = None, horizon: int | None = None,
                 gamma: float | None = None, lambda_: float | None = None, entropy: float | None = None,
                 rho: float | None = None, target_every: int | None = None, batch_size: int | None = None,
                 seq_len: int | None = None, train_every: int | None = None, train_steps: int | None = None,
                 prefill: int | None = None, buffer_size: int | None = None,
                 updates_per_evaluation: int | None = None):
        version = version or self.default_version
        check(self.name, {"version": version}, {"version": OneOf(tuple(PAPER_DEFAULTS))})
        given = {k: v for k, v in locals().items() if k in PAPER_DEFAULTS[version] and v is not None}
        self.hp = hp = {**PAPER_DEFAULTS[version], **given, "version": version}  # None: the paper's value
        check(self.name, hp, RANGES)
        super().__init__(env, seed, device)
        if not isinstance(self.action_space, gym.spaces.Discrete) or len(self.observation_space.shape) != 1:
            raise TypeError("Dreamer here needs a flat Box observation and a Discrete action space, got "
                            f"{self.observation_space} and {self.action_space}")
        obs_dim, self.num_actions = self.observation_space.shape[0], int(self.action_space.n)
        torch.manual_seed(seed)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        rssm = RSSM(self.num_actions, hp["units"], hp["deter_size"], hp["hidden_size"], hp["latent"],
                    hp["stoch_size"], hp["classes"])
        masked = hasattr(env.unwrapped, "action_masks")
        self.model = WorldModel(obs_dim, self.num_actions, rssm, hp["units"], hp["units"],
                                predict_mask=masked).to(self.device)
        self.actor = mlp(rssm.feature_size, hp["units"], self.num_actions).to(self.device)
        self.critic = mlp(rssm.feature_size, hp["units"], 1).to(self.device)
        self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.model_opt = torch.optim.Adam(self.model.parameters(), hp["model_lr"], eps=hp["adam_eps"])
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), hp["actor_lr"], eps=hp["adam_eps"])
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), hp["critic_lr"], eps=hp["adam_eps"])
        self.replay = SequenceReplay(hp["buffer_size"], obs_dim, self.num_actions)
        self.steps = self.updates = 0
        self._predict: tuple[State | None, int | None] = (None, None)  # predict()'s RSSM state, last action
        self.in_flight: set[Decisions] = set()
        self.predicted: dict[Decisions, float] = {}  # proposed cells' predicted scores, logged on observe

    # -- acting -------------------------------------------------------------------------
    @torch.no_grad()
    def _filter(self, state: State | None, action: int | None, obs: np.ndarray, sample: bool = True) -> State:
        rssm = self.model.rssm
        state = state or rssm.initial(1, self.device)
        prev = torch.zeros(1, self.num_actions, device=self.device)
        if action is not None:
            prev[0, action] = 1.0
        embed = self.model.encoder(torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(1, -1))
        return rssm.obs_step(state, prev, embed, self.generator, sample)[0]

    @torch.no_grad()
    def _act(self, state: State, mask: np.ndarray | None, deterministic: bool) -> int:
        logits = self.actor(state.feature)[0]
        if mask is not None:
            logits = logits.masked_fill(~torch.as_tensor(mask, dtype=torch.bool, device=self.device), -torch.inf)
        if deterministic:
            return int(logits.argmax())
        return int(torch.multinomial(logits.softmax(-1), 1, generator=self.generator))

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None, deterministic: bool = False,
                episode_start: bool = False) -> int:
        """One observation at a time, filtered into the RSSM state of the calls before
        (``episode_start=True`` starts from the zero state). ``deterministic`` also takes the
        posterior's mode instead of a sample, so that the same observations give the same
        actions."""
        state, action = (None, None) if episode_start else self._predict
        state = self._filter(state, action, obs, sample=not deterministic)
        action = self._act(state, action_mask, deterministic)
        self._predict = (state, action)
        return action

    # -- learning -----------------------------------------------------------------------
    def learn(self, budget: Budget, callback: Callback | None = None) -> Dreamer:
        per_step = self.hp["updates_per_evaluation"] is None
        while self.env.within(budget):
            obs, info = self.reset_env()
            mask = info.get("action_mask")
            episode = [(obs, -1, 0.0, False, True, mask)]
            state, done = self._filter(None, None, obs), False
            while not done and self.env.within(budget):
                action = self._choose(state, mask)
                obs, reward, terminated, truncated, info = self.env.step(action)
                done = terminated or truncated
                mask = info.get("action_mask")
                state = self._filter(state, action, obs)
                if done and "arch" in info:
                    self._log_surrogate(self._predicted_score(state), float(reward))
                episode.append((obs, action, float(reward), bool(terminated), False, mask))
                if per_step:  # the papers' schedule: store and train as the steps come
                    self._store(episode)
            self._learn_from(episode)
            if callback is not None:
                callback(self)
        return self

    def _choose(self, state: State, mask: np.ndarray | None) -> int:
        """A random legal action during the prefill, the actor's sample after it."""
        if self.steps < self.hp["prefill"]:
            legal = np.flatnonzero(mask) if mask is not None else np.arange(self.num_actions)
            return int(self.rng.choice(legal))
        return self._act(state, mask, deterministic=False)

    def _learn_from(self, episode: list[tuple]) -> None:
        """The NAS schedule: an episode that built a new architecture is stored and trained
        on ``updates_per_evaluation`` times (the monitor counts repeats; on an env without
        architectures every episode is new). On the papers' schedule it was stored already."""
        if self.hp["updates_per_evaluation"] is not None and self.env.stale_episodes == 0:
            self._store(episode)
            self._train(self.hp["updates_per_evaluation"])

    # -- proposing whole cells (parallel runs, rlnas.parallel) -------------------------------
    def propose(self) -> Decisions:
        """Filter and act through a cell's previews as an episode would, without stepping
        the env; the model's predicted score is kept for :meth:`observe` to log."""
        env, decisions, action, state = self.nas_env(), [], None, None
        for _ in range(env.space.num_decisions):
            obs, mask = env.preview(decisions)
            state = self._filter(state, action, obs)
            action = self._choose(state, mask)
            decisions.append(action)
        state = self._filter(state, action, env.preview(decisions)[0])
        self.predicted[tuple(decisions)] = self._predicted_score(state)
        return tuple(decisions)

    def observe(self, decisions: Decisions, score: float) -> None:
        """Learn from the cell's episode, rebuilt from its previews: what learn() stores
        after the same episode. Proposals made before this result came back were acted
        on by the actor as it was then."""
        env, decisions = self.nas_env(), tuple(decisions)
        if decisions in self.predicted:
            self._log_surrogate(self.predicted.pop(decisions), score)
        obs, mask = env.preview(())
        episode = [(obs, -1, 0.0, False, True, mask)]
        for t, action in enumerate(decisions):
            obs, mask = env.preview(decisions[:t + 1])
            last = t + 1 == len(decisions)
            episode.append((obs, action, score if last else 0.0, last, False, mask))
        if self.hp["updates_per_evaluation"] is None:
            self._store(episode)
        self._learn_from(episode)

    def _store(self, episode: list[tuple]) -> None:
        """Move the episode's pending steps into the replay. On the papers' schedule, train
        ``train_steps`` times every ``train_every`` steps."""
        hp = self.hp
        for transition in episode:
            self.replay.add(*transition)
            if transition[1] < 0:  # an episode's first observation: no step taken
                continue
            self.steps += 1
            if hp["updates_per_evaluation"] is None and self.steps % hp["train_every"] == 0:
                self._train(hp["train_steps"])
        episode.clear()

    def _train(self, updates: int) -> None:
        """``updates`` training steps, once the prefill is over and a window fits the replay."""
        if self.steps >= self.hp["prefill"] and self.replay.size >= self.hp["seq_len"]:
            for _ in range(updates):
                self.train_step()

    @torch.no_grad()
    def _predicted_score(self, state: State) -> float:
        return self.model.reward(state.feature).item()

    def _log_surrogate(self, predicted: float, reward: float) -> None:
        """How good the world model is as a surrogate: its predicted against the real
        reward (the score) of every evaluated architecture, from the filtered final state."""
        step = self.env.env_steps
        self.logger.scalar("world_model/predicted_score", predicted, step)
        self.logger.scalar("world_model/real_score", reward, step)
        self.logger.scalar("world_model/score_error", predicted - reward, step)

    def train_step(self) -> None:
        hp = self.hp
        batch = self.replay.sample(hp["batch_size"], hp["seq_len"], self.rng, self.device)
        model_loss, post, terms = self.model.loss(batch, hp["kl_balance"], hp["free_nats"], hp["kl_scale"],
                                                  hp["reward_scale"], hp["discount_scale"], self.generator)
        self.model_opt.zero_grad(set_to_none=True)
        model_loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), hp["grad_clip"])
        self.model_opt.step()

        start = post.detach().flatten()
        alive = 1.0 - batch["terminals"].reshape(-1)
        actor_loss, critic_loss, imagined = self._behaviour_losses(start, alive)
        for loss, opt, net in ((actor_loss, self.actor_opt, self.actor), (critic_loss, self.critic_opt, self.critic)):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), hp["grad_clip"])
            opt.step()
        self.updates += 1
        if self.updates % hp["target_every"] == 0:
            self.target.load_state_dict(self.critic.state_dict())
        if self.updates % 50 == 0:
            step = self.env.env_steps
            for key, value in {**terms, **imagined, "model_loss": model_loss.item(), "actor_loss": actor_loss.item(),
                               "critic_loss": critic_loss.item()}.items():
                self.logger.scalar(f"{self.name}/{key}", value, step)

    def _behaviour_losses(self, start: State, alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        hp, model = self.hp, self.model
        dynamics = hp["rho"] < 1.0  # the return's gradient flows back through imagined states (V1)
        for p in model.parameters():  # ... through the model, never into it
            p.requires_grad_(False)
        try:
            state, features, entropies, logps = start, [start.feature], [], []
            for _ in range(hp["horizon"]):
                feature = state.feature
                logits = self.actor(feature if dynamics else feature.detach())
                legal = model.legal(feature.detach())
                if legal is not None:
                    logits = logits.masked_fill(~legal, -1e9)
                action = straight_through_onehot(logits, self.generator)
                logp = logits.log_softmax(-1)
                logps.append((logp * action.detach()).sum(-1))
                entropies.append(-(logp.exp() * logp).sum(-1))
                with torch.set_grad_enabled(dynamics):
                    state = model.rssm.img_step(state, action if dynamics else action.detach(), self.generator)
                features.append(state.feature)
            with torch.set_grad_enabled(dynamics):
                feats = torch.stack(features)  # (H + 1, N, F)
                rewards = model.reward(feats[1:]).squeeze(-1)
                discounts = hp["gamma"] * torch.sigmoid(model.cont(feats[1:])).squeeze(-1)
        finally:
            for p in model.parameters():
                p.requires_grad_(True)
        values = self.target(feats).squeeze(-1)
        returns = lambda_returns(rewards, values, discounts, hp["lambda_"])  # (H, N)
        with torch.no_grad():
            weights = torch.cat([alive[None], alive[None] * torch.cumprod(discounts[:-1].detach(), 0)])
        logp, entropy = torch.stack(logps), torch.stack(entropies)
        reinforce = logp * (returns - values[:-1]).detach()
        objective = hp["rho"] * reinforce + (1 - hp["rho"]) * returns + hp["entropy"] * entropy
        actor_loss = -(weights * objective).mean()
        critic_loss = 0.5 * (weights * (self.critic(feats[:-1].detach()).squeeze(-1) - returns.detach()) ** 2).mean()
        imagined = {"imagined_return": returns[0].mean().item(), "actor_entropy": entropy.mean().item()}
        return actor_loss, critic_loss, imagined

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        nets = ("model", "actor", "critic", "target", "model_opt", "actor_opt", "critic_opt")
        return {**super().state_dict(), **{n: getattr(self, n).state_dict() for n in nets},
                "generator": self.generator.get_state(), "replay": self.replay.state(),
                "steps": self.steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for n in ("model", "actor", "critic", "target", "model_opt", "actor_opt", "critic_opt"):
            getattr(self, n).load_state_dict(state[n])
        self.generator.set_state(state["generator"])
        self.replay.load(state["replay"])
        self.steps, self.updates = state["steps"], state["updates"]


@register("dreamer_v1")
class DreamerV1(Dreamer):
    """Dreamer V1: Gaussian latents, KL with free nats, actor by dynamics backpropagation."""

    default_version = 1


@register("dreamer_v2")
class DreamerV2(Dreamer):
    """Dreamer V2: 32 x 32 categorical latents, KL balancing, REINFORCE actor (discrete)."""
