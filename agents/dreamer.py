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

The two papers differ in their latents, KL form and settings, which are the defaults of
:class:`DreamerV1Config` and :class:`DreamerConfig` (V2's).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.agents.architecture_agent import Proposer
from rlnas.agents.base import Agent, AgentConfig, Callback
from rlnas.core.settings import (
    INT_AT_LEAST_0,
    INT_AT_LEAST_1,
    NON_NEGATIVE,
    POSITIVE,
    UNIT,
    OneOf,
    Range,
    redefault,
    setting,
)
from rlnas.envs.monitor import Budget
from rlnas.spaces import Decisions
from rlnas.world_models.rssm import RSSM, State, straight_through_onehot
from rlnas.world_models.world_model import WorldModel, mlp


@dataclass
class DreamerConfig(AgentConfig):
    """Dreamer V2's published settings ("Mastering Atari with Discrete World Models",
    Appendix, Atari: discrete actions). ``nas``: a search pays for 100-200 architectures
    (600-10,000 steps), so the networks are smaller, the prefill ten NB201 episodes, and
    training is scheduled per new architecture (evaluations are dear, updates cheap; a repeat
    is free and teaches nothing), not per step; scores differ by a percent, so the reward
    term is weighed 100 and the entropy bonus raised to 1e-2 (at the paper's 1e-3 the search
    collapses); an NB201 episode is 6 decisions, so the horizon is 6 and gamma 1 (one
    architecture per episode, its score the only reward). Measured in docs/benchmarks.md,
    "Every agent on NB201". ``cartpole``: scaled down for a 4-dimensional observation."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(deter_size=128, hidden_size=128, stoch_size=16, classes=16, units=128, reward_scale=100.0,
                    discount_scale=1.0, model_lr=1e-3, actor_lr=3e-4, critic_lr=3e-4, horizon=6, gamma=1.0,
                    entropy=1e-2, seq_len=12, updates_per_evaluation=18, train_every=1, prefill=60,
                    buffer_size=100_000),
        "cartpole": dict(deter_size=128, hidden_size=128, units=128, stoch_size=16, classes=16, batch_size=16,
                         seq_len=32, train_every=10, train_steps=1, prefill=2000, gamma=0.99, model_lr=1e-3,
                         actor_lr=3e-4, critic_lr=3e-4, free_nats=1.0, kl_scale=1.0, entropy=1e-3,
                         buffer_size=100_000),
    }
    latent: str = setting("categorical", "gaussian (V1's diagonal Gaussian) or categorical (V2's one-hot groups)",
                          OneOf(("gaussian", "categorical")))
    deter_size: int = setting(600, "the GRU's state", INT_AT_LEAST_1)
    hidden_size: int = setting(600, "the RSSM's hidden layers", INT_AT_LEAST_1)
    stoch_size: int = setting(32, "stochastic variables (Gaussian dimensions or categorical groups)", INT_AT_LEAST_1)
    classes: int = setting(32, "classes of each categorical variable (unused by Gaussian latents)", INT_AT_LEAST_1)
    units: int = setting(400, "width of the encoder, the heads, the actor and the critic", INT_AT_LEAST_1)
    kl_balance: float | None = setting(0.8, "V2's KL balancing: how much of the KL trains the prior",
                                       Range(0, 1, none_means="no balancing, V1's KL"))
    free_nats: float = setting(0.0, "KL below this is not penalised", NON_NEGATIVE)
    kl_scale: float = setting(0.1, "weight of the KL term", NON_NEGATIVE)
    reward_scale: float = setting(1.0, "weight of the reward term", NON_NEGATIVE)
    discount_scale: float = setting(5.0, "weight of the continuation term", NON_NEGATIVE)
    model_lr: float = setting(2e-4, "the world model's Adam learning rate", POSITIVE)
    actor_lr: float = setting(4e-5, "the actor's Adam learning rate", POSITIVE)
    critic_lr: float = setting(1e-4, "the critic's Adam learning rate", POSITIVE)
    adam_eps: float = setting(1e-5, "Adam's epsilon", POSITIVE)
    grad_clip: float = setting(100.0, "gradient norm clip", POSITIVE)
    horizon: int = setting(15, "steps imagined from every posterior state", INT_AT_LEAST_1)
    gamma: float = setting(0.999, "discount factor", UNIT)
    lambda_: float = setting(0.95, "lambda of the lambda-returns", UNIT)
    entropy: float = setting(1e-3, "weight of the actor's entropy bonus", NON_NEGATIVE)
    rho: float = setting(1.0, "REINFORCE's share of the actor gradient (1: REINFORCE, V2's; 0: dynamics "
                              "backpropagation, V1's)", UNIT)
    target_every: int = setting(100, "updates between copies of the critic into its slow target", INT_AT_LEAST_1)
    batch_size: int = setting(16, "sequences per update", INT_AT_LEAST_1)
    seq_len: int = setting(50, "steps per sequence", INT_AT_LEAST_1)
    train_every: int = setting(16, "env steps between trainings, on the papers' schedule", INT_AT_LEAST_1)
    train_steps: int = setting(1, "updates per training, on the papers' schedule", INT_AT_LEAST_1)
    prefill: int = setting(50_000, "random legal steps before the actor acts", INT_AT_LEAST_0)
    buffer_size: int = setting(2_000_000, "steps the replay holds", INT_AT_LEAST_1)
    updates_per_evaluation: int | None = setting(None, "updates after each episode that built a new architecture",
                                                 Range(1, integer=True, none_means="the papers' per-step schedule, "
                                                                                   "train_every and train_steps"))


@dataclass
class DreamerV1Config(DreamerConfig):
    """Dreamer V1's published settings ("Dream to Control", Appendix A: continuous control;
    its 5,000-step prefill and train-every-1000 x 100 are a train ratio of 1:10). ``nas``:
    as V2's, with V1's latents and KL; repeats stay on the step schedule (V2's 18 updates per
    evaluation collapse V1's actor onto repeats, which then never train it) and the entropy
    bonus is 3e-2 (V1 has none; at 1e-2 its search settles on a few cells)."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(deter_size=128, hidden_size=128, units=128, reward_scale=100.0, model_lr=1e-3, actor_lr=3e-4,
                    critic_lr=3e-4, horizon=6, gamma=1.0, entropy=3e-2, batch_size=16, seq_len=12, train_every=1,
                    train_steps=1, prefill=60, buffer_size=100_000),
        "cartpole": {**DreamerConfig.PRESETS["cartpole"], "stoch_size": 30, "classes": 1},
    }
    latent: str = redefault(DreamerConfig, "latent", "gaussian")
    deter_size: int = redefault(DreamerConfig, "deter_size", 200)
    hidden_size: int = redefault(DreamerConfig, "hidden_size", 200)
    stoch_size: int = redefault(DreamerConfig, "stoch_size", 30)
    classes: int = redefault(DreamerConfig, "classes", 1)
    kl_balance: float | None = redefault(DreamerConfig, "kl_balance", None)
    free_nats: float = redefault(DreamerConfig, "free_nats", 3.0)
    kl_scale: float = redefault(DreamerConfig, "kl_scale", 1.0)
    discount_scale: float = redefault(DreamerConfig, "discount_scale", 1.0)
    model_lr: float = redefault(DreamerConfig, "model_lr", 6e-4)
    actor_lr: float = redefault(DreamerConfig, "actor_lr", 8e-5)
    critic_lr: float = redefault(DreamerConfig, "critic_lr", 8e-5)
    adam_eps: float = redefault(DreamerConfig, "adam_eps", 1e-7)
    gamma: float = redefault(DreamerConfig, "gamma", 0.99)
    entropy: float = redefault(DreamerConfig, "entropy", 0.0)
    rho: float = redefault(DreamerConfig, "rho", 0.0)
    batch_size: int = redefault(DreamerConfig, "batch_size", 50)
    train_every: int = redefault(DreamerConfig, "train_every", 1000)
    train_steps: int = redefault(DreamerConfig, "train_steps", 100)
    prefill: int = redefault(DreamerConfig, "prefill", 5000)
    buffer_size: int = redefault(DreamerConfig, "buffer_size", 1_000_000)


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

    Config = DreamerConfig
    config: DreamerConfig

    def __init__(self, env: gym.Env, config: DreamerConfig | None = None, seed: int = 0, device: str = "cpu",
                 **settings: Any):
        super().__init__(env, config, seed, device, **settings)
        hp = self.config
        if not isinstance(self.action_space, gym.spaces.Discrete) or len(self.observation_space.shape) != 1:
            raise TypeError("Dreamer here needs a flat Box observation and a Discrete action space, got "
                            f"{self.observation_space} and {self.action_space}")
        obs_dim, self.num_actions = self.observation_space.shape[0], int(self.action_space.n)
        torch.manual_seed(seed)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        rssm = RSSM(self.num_actions, hp.units, hp.deter_size, hp.hidden_size, hp.latent,
                    hp.stoch_size, hp.classes)
        masked = hasattr(env.unwrapped, "action_masks")
        self.model = WorldModel(obs_dim, self.num_actions, rssm, hp.units, hp.units,
                                predict_mask=masked).to(self.device)
        self.actor = mlp(rssm.feature_size, hp.units, self.num_actions).to(self.device)
        self.critic = mlp(rssm.feature_size, hp.units, 1).to(self.device)
        self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.model_opt = torch.optim.Adam(self.model.parameters(), hp.model_lr, eps=hp.adam_eps)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), hp.actor_lr, eps=hp.adam_eps)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), hp.critic_lr, eps=hp.adam_eps)
        self.replay = SequenceReplay(hp.buffer_size, obs_dim, self.num_actions)
        self.steps = self.updates = 0
        self._predict: tuple[State | None, int | None] = (None, None)  # predict()'s RSSM state, last action
        self.in_flight: set[Decisions] = set()
        self.held: list[Decisions] = []
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
        per_step = self.config.updates_per_evaluation is None
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
        if self.steps < self.config.prefill:
            legal = np.flatnonzero(mask) if mask is not None else np.arange(self.num_actions)
            return int(self.rng.choice(legal))
        return self._act(state, mask, deterministic=False)

    def _learn_from(self, episode: list[tuple]) -> None:
        """The NAS schedule: an episode that built a new architecture is stored and trained
        on ``updates_per_evaluation`` times (the monitor counts repeats; on an env without
        architectures every episode is new). On the papers' schedule it was stored already."""
        if self.config.updates_per_evaluation is not None and self.env.stale_episodes == 0:
            self._store(episode)
            self._train(self.config.updates_per_evaluation)

    # -- proposing whole cells (parallel runs, rlnas.search.driver) --------------------------
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
        if self.config.updates_per_evaluation is None:
            self._store(episode)
        self._learn_from(episode)

    def _store(self, episode: list[tuple]) -> None:
        """Move the episode's pending steps into the replay. On the papers' schedule, train
        ``train_steps`` times every ``train_every`` steps."""
        hp = self.config
        for transition in episode:
            self.replay.add(*transition)
            if transition[1] < 0:  # an episode's first observation: no step taken
                continue
            self.steps += 1
            if hp.updates_per_evaluation is None and self.steps % hp.train_every == 0:
                self._train(hp.train_steps)
        episode.clear()

    def _train(self, updates: int) -> None:
        """``updates`` training steps, once the prefill is over and a window fits the replay."""
        if self.steps >= self.config.prefill and self.replay.size >= self.config.seq_len:
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
        hp = self.config
        batch = self.replay.sample(hp.batch_size, hp.seq_len, self.rng, self.device)
        model_loss, post, terms = self.model.loss(batch, hp.kl_balance, hp.free_nats, hp.kl_scale,
                                                  hp.reward_scale, hp.discount_scale, self.generator)
        self.model_opt.zero_grad(set_to_none=True)
        model_loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), hp.grad_clip)
        self.model_opt.step()

        start = post.detach().flatten()
        alive = 1.0 - batch["terminals"].reshape(-1)
        actor_loss, critic_loss, imagined = self._behaviour_losses(start, alive)
        for loss, opt, net in ((actor_loss, self.actor_opt, self.actor), (critic_loss, self.critic_opt, self.critic)):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), hp.grad_clip)
            opt.step()
        self.updates += 1
        if self.updates % hp.target_every == 0:
            self.target.load_state_dict(self.critic.state_dict())
        if self.updates % 50 == 0:
            step = self.env.env_steps
            for key, value in {**terms, **imagined, "model_loss": model_loss.item(), "actor_loss": actor_loss.item(),
                               "critic_loss": critic_loss.item()}.items():
                self.logger.scalar(f"{self.name}/{key}", value, step)

    def _behaviour_losses(self, start: State, alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        hp, model = self.config, self.model
        dynamics = hp.rho < 1.0  # the return's gradient flows back through imagined states (V1)
        for p in model.parameters():  # ... through the model, never into it
            p.requires_grad_(False)
        try:
            state, features, entropies, logps = start, [start.feature], [], []
            for _ in range(hp.horizon):
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
                discounts = hp.gamma * torch.sigmoid(model.cont(feats[1:])).squeeze(-1)
        finally:
            for p in model.parameters():
                p.requires_grad_(True)
        values = self.target(feats).squeeze(-1)
        returns = lambda_returns(rewards, values, discounts, hp.lambda_)  # (H, N)
        with torch.no_grad():
            weights = torch.cat([alive[None], alive[None] * torch.cumprod(discounts[:-1].detach(), 0)])
        logp, entropy = torch.stack(logps), torch.stack(entropies)
        reinforce = logp * (returns - values[:-1]).detach()
        objective = hp.rho * reinforce + (1 - hp.rho) * returns + hp.entropy * entropy
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


class DreamerV1(Dreamer):
    """Dreamer V1: Gaussian latents, KL with free nats, actor by dynamics backpropagation."""

    Config = DreamerV1Config
    name = "dreamer_v1"


class DreamerV2(Dreamer):
    """Dreamer V2: 32 x 32 categorical latents, KL balancing, REINFORCE actor (discrete)."""

    name = "dreamer_v2"
