"""Dreamer V1 (Hafner et al. 2019, "Dream to Control") and V2 (Hafner et al. 2020,
"Mastering Atari with Discrete World Models"): fit a world model to replayed sequences,
then train an actor and a critic on trajectories imagined in its latent space.

1. Act: filter the observation into the RSSM posterior, sample a legal action, store the step.
2. Train ``train_steps`` times every ``train_every`` steps (the papers' schedule), or
   ``updates_per_evaluation`` times after each episode that built a new architecture (the
   NAS schedule: compute follows the evaluations paid for). An update fits the model
   (reconstruction + reward + continuation + KL, with V2's balancing and free nats), imagines
   ``horizon`` steps from every posterior state, and trains
   * the critic on ``R_t = r_t + d_t ((1 - lambda) v(s_{t+1}) + lambda R_{t+1})``, ``R_H = v(s_H)``;
   * the actor on ``-w_t [rho log pi(a_t|s_t) sg(R_t - v(s_t)) + (1 - rho) R_t + eta H]``, ``w_t``
     the discounted probability of being alive; ``rho = 1`` is V2's REINFORCE, ``rho = 0``
     V1's dynamics backpropagation through straight-through actions.

On a NAS env the ``nas`` preset plans each episode's cell in the world model, as the planner
does in its Gaussian process (docs/world-models.md, "Dreamer on NB201"):

* the reward head is an ensemble; each episode draws one head, Thompson sampling's view of
  what the reward could be, and imagination trains the actor and critic on their mean;
* the episode builds the unevaluated cell that head scores best among the actor's imagined
  cells and the best evaluated cells' neighbours, refined by ``planning_rounds`` of the
  leaders' neighbours (the cells are filtered through the model as their episodes would go);
* on NB201 the prefill builds SynFlow's best cells spread apart, and a finished cell's
  observation also holds its data-free proxies and op classes (``cell_prior``).
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlnas.agents.architecture_agent import Proposer
from rlnas.agents.base import Agent, Callback
from rlnas.agents.dreamer_config import DreamerConfig, DreamerV1Config
from rlnas.agents.dreamer_planning import CellPlanning
from rlnas.agents.policies import ActionHead, Kumaraswamy
from rlnas.agents.replay import SequenceReplay
from rlnas.envs.monitor import Budget
from rlnas.spaces import Decisions
from rlnas.world_models.rssm import RSSM, State, straight_through_onehot
from rlnas.world_models.world_model import WorldModel, mlp


def lambda_returns(rewards: torch.Tensor, values: torch.Tensor, discounts: torch.Tensor,
                   lambda_: float) -> torch.Tensor:
    """``R_t = r_t + d_t ((1 - lambda) v_{t+1} + lambda R_{t+1})``, ``R_H = v_H``, over ``(H, ...)``."""
    returns = []
    last = values[-1]
    for t in reversed(range(rewards.shape[0])):
        last = rewards[t] + discounts[t] * ((1 - lambda_) * values[t + 1] + lambda_ * last)
        returns.append(last)
    return torch.stack(returns[::-1])


class Dreamer(CellPlanning, Proposer, Agent):
    """Dreamer on any env with a flat ``Box`` observation and a ``Discrete`` action space, or
    an rlnas env's continuous decisions: there the actor's head is hybrid (a choice's logits
    and a value's :class:`~rlnas.agents.policies.Kumaraswamy`, :class:`ActionHead`), the RSSM
    reads an action as the choice's one-hot with the value in one more slot, and imagination
    takes a value step where the model predicts that no choice is legal."""

    Config = DreamerConfig
    acts_on_values = True
    checkpointed = ("model", "actor", "critic", "target", "model_opt", "actor_opt", "critic_opt", "generator",
                    "replay", "steps", "updates", "seen")
    config: DreamerConfig

    def __init__(self, env: gym.Env, config: DreamerConfig | None = None, seed: int = 0, device: str = "cpu",
                 **settings: Any):
        super().__init__(env, config, seed, device, **settings)
        hp = self.config
        if len(self.observation_space.shape) != 1:
            raise TypeError(f"Dreamer here needs a flat Box observation, got {self.observation_space}")
        self.head = ActionHead(self.action_space, self.name)
        self._cell_prior(getattr(env.unwrapped, "space", None))
        obs_dim, self.num_actions = self.observation_space.shape[0] + self.extra_size, self.head.choices
        # the choice's one-hot, the value's slot, then (prior_in_action) the finished cell's prior
        self.action_dim = self.num_actions + self.head.values + self.action_extra
        torch.manual_seed(seed)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        rssm = RSSM(self.action_dim, hp.units, hp.deter_size, hp.hidden_size, hp.latent, hp.stoch_size, hp.classes)
        masked = hasattr(env.unwrapped, "action_masks") and self.num_actions > 0
        self.model = WorldModel(obs_dim, self.num_actions, rssm, hp.units, hp.units, predict_mask=masked,
                                reward_heads=hp.reward_heads).to(self.device)
        self.actor = mlp(rssm.feature_size, hp.units, self.head.size).to(self.device)
        self.critic = mlp(rssm.feature_size, hp.units, 1).to(self.device)
        self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.model_opt = torch.optim.Adam(self.model.parameters(), hp.model_lr, eps=hp.adam_eps)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), hp.actor_lr, eps=hp.adam_eps)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), hp.critic_lr, eps=hp.adam_eps)
        self.replay = SequenceReplay(hp.buffer_size, obs_dim, self.action_dim, max(self.num_actions, 1))
        self.steps = self.updates = 0
        self._predict: tuple[State | None, np.ndarray | None] = (None, None)  # predict()'s RSSM state, last action
        self.in_flight: set[Decisions] = set()
        self.held: list[Decisions] = []
        self.seen: dict[Decisions, float] = {}  # the cells built and their scores: a plan pays for none twice
        self.predicted: dict[Decisions, float] = {}  # proposed cells' predicted scores, logged on observe
        self._episodes: dict[Decisions, tuple[np.ndarray, np.ndarray] | None] = {}  # see _episode_of


    # -- acting -------------------------------------------------------------------------
    def _value_step(self, mask: np.ndarray | None) -> bool:
        """Whether the next action is a value: its mask allows no choice (or there are none)."""
        return self.head.values and (not self.num_actions if mask is None else not mask.any())

    def _vector(self, action: int | float, mask: np.ndarray | None) -> np.ndarray:
        """An action as the RSSM reads it: a choice one-hot, or a value in the slot after them."""
        vector = np.zeros(self.action_dim, np.float32)
        if self._value_step(mask):
            vector[self.num_actions] = action
        else:
            vector[int(action)] = 1.0
        return vector

    @torch.no_grad()
    def _filter(self, state: State | None, action: np.ndarray | None, obs: np.ndarray, sample: bool = True) -> State:
        rssm = self.model.rssm
        state = state or rssm.initial(1, self.device)
        prev = torch.zeros(1, self.action_dim, device=self.device)
        if action is not None:
            prev[0] = torch.as_tensor(action, device=self.device)
        embed = self.model.encoder(torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(1, -1))
        return rssm.obs_step(state, prev, embed, self.generator, sample)[0]

    @torch.no_grad()
    def _act(self, state: State, mask: np.ndarray | None, deterministic: bool) -> int | float:
        out = self.actor(state.feature)
        mask_t = None if mask is None else torch.as_tensor(mask, dtype=torch.bool, device=self.device)[None]
        if self.head.values:
            dist = self.head.distribution(out, mask_t)
            return self.head.one(self.head.draw(dist, self.generator, deterministic), dist)
        logits = out[0]
        if mask_t is not None:
            logits = logits.masked_fill(~mask_t[0], -torch.inf)
        if deterministic:
            return int(logits.argmax())
        return int(torch.multinomial(logits.softmax(-1), 1, generator=self.generator))

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None, deterministic: bool = False,
                episode_start: bool = False) -> int | float:
        """One observation at a time, filtered into the RSSM state of the calls before;
        ``deterministic`` takes the posterior's mode too, so the same observations give the
        same actions."""
        state, action = (None, None) if episode_start else self._predict
        obs = self._observation(obs)
        state = self._filter(state, self._reached(action, obs), obs, sample=not deterministic)
        chosen = self._act(state, action_mask, deterministic)
        self._predict = (state, self._vector(chosen, action_mask))
        return chosen

    # -- learning -----------------------------------------------------------------------
    def learn(self, budget: Budget, callback: Callback | None = None) -> Dreamer:
        per_step = self.config.updates_per_evaluation is None
        while self.env.within(budget):
            obs, info = self.reset_env()
            obs, mask = self._observation(obs), info.get("action_mask")
            episode = [(obs, None, 0.0, False, True, mask)]
            plan, made, done, new = self._plan(obs), [], False, False  # planned first, as propose() plans
            state = self._filter(None, None, obs)
            while not done and self.env.within(budget):
                chosen = self._choose(state, mask, plan, len(made))
                made.append(chosen)
                action = self._vector(chosen, mask)
                obs, reward, terminated, truncated, info = self.env.step(chosen)
                done = terminated or truncated
                obs, mask = self._observation(obs), info.get("action_mask")
                action = self._reached(action, obs)
                state = self._filter(state, action, obs)
                if done and "arch" in info:
                    new = tuple(made) not in self.seen
                    self.seen[tuple(made)] = float(reward)
                    self._log_surrogate(self._predicted_score(state), float(reward))
                episode.append((obs, action, float(reward), bool(terminated), False, mask))
                if per_step:  # the papers' schedule: store and train as the steps come
                    self._store(episode)
            self._learn_from(episode, new)
            if callback is not None:
                callback(self)
        return self

    def _choose(self, state: State, mask: np.ndarray | None, plan: Decisions | None = None,
                step: int = 0) -> int | float:
        """The plan's decision where it is legal; else a random legal action during the
        prefill (a value: uniform), the actor's sample after it."""
        if plan is not None and (mask is None or mask[plan[step]]):
            return plan[step]
        if self.steps < self.config.prefill:
            if self._value_step(mask):
                return float(self.rng.random())
            legal = np.flatnonzero(mask) if mask is not None else np.arange(self.num_actions)
            return int(self.rng.choice(legal))
        return self._act(state, mask, deterministic=False)


    def _learn_from(self, episode: list[tuple], new: bool) -> None:
        """The NAS schedule: store the episode of an architecture new to the agent and train on
        it. New to the agent, not to the store: a resumed search rebuilds the cells stored after
        its checkpoint, and trains on them as the uninterrupted search did."""
        if self.config.updates_per_evaluation is not None and new:
            self._store(episode)
            self._train(self.config.updates_per_evaluation)

    # -- proposing whole cells (parallel runs) ------------------------------------------
    def propose(self) -> Decisions:
        """Act through a cell's previews as an episode would, without stepping the env."""
        env, decisions, action, state = self.nas_env(), [], None, None
        plan = self._plan(self._observation(env.preview(())[0]))
        for t in range(env.space.num_decisions + 1):
            obs, mask = env.preview(decisions)
            obs = self._observation(obs)
            state = self._filter(state, self._reached(action, obs), obs)
            if t == env.space.num_decisions:
                break
            decisions.append(self._choose(state, mask, plan, t))
            action = self._vector(decisions[-1], mask)
        self.predicted[tuple(decisions)] = self._predicted_score(state)
        return tuple(decisions)

    def observe(self, decisions: Decisions, score: float) -> None:
        """Learn from the cell's episode, rebuilt from its previews as learn() stores it."""
        env, decisions = self.nas_env(), tuple(decisions)
        new = decisions not in self.seen
        self.seen[decisions] = score
        if decisions in self.predicted:
            self._log_surrogate(self.predicted.pop(decisions), score)
        obs, mask = env.preview(())
        episode = [(self._observation(obs), None, 0.0, False, True, mask)]
        for t, action in enumerate(decisions):
            vector = self._vector(action, mask)
            obs, mask = env.preview(decisions[:t + 1])
            obs = self._observation(obs)
            vector = self._reached(vector, obs)
            last = t + 1 == len(decisions)
            episode.append((obs, vector, score if last else 0.0, last, False, mask))
        if self.config.updates_per_evaluation is None:
            self._store(episode)
        self._learn_from(episode, new)

    def _store(self, episode: list[tuple]) -> None:
        """Move the episode's pending steps into the replay, training on the papers' schedule."""
        hp = self.config
        for transition in episode:
            self.replay.add(*transition)
            if transition[1] is None:  # an episode's first observation: no step taken
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
        """How good the world model is as a surrogate: predicted against real score."""
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
        actor_loss, critic_loss, imagined = self._behaviour_losses(start, alive, batch["obs"].flatten(0, 1))
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

    def _behaviour_losses(self, start: State, alive: torch.Tensor,
                          obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        hp, model = self.config, self.model
        cells, position = self._cells_of(obs) if self.action_extra else (None, None)
        dynamics = hp.rho < 1.0  # the return's gradient flows back through imagined states (V1)
        for p in model.parameters():  # ... through the model, never into it
            p.requires_grad_(False)
        try:
            state, features, entropies, logps = start, [start.feature], [], []
            for step in range(hp.horizon):
                feature = state.feature
                out = self.actor(feature if dynamics else feature.detach())
                action, logp, entropy = self._imagine_action(out, feature.detach())
                if cells is not None:
                    action, cells = self._imagined_prior(action, cells, position + step)
                logps.append(logp)
                entropies.append(entropy)
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


    def _imagine_action(self, out: torch.Tensor, feature: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """An imagined action (straight-through one-hot; a value reparameterised, so V1's
        gradient flows through both), its log-probability and the policy's entropy."""
        model, k = self.model, self.num_actions
        if k:
            logits = out[..., :k]
            legal = model.legal(feature)
            if legal is not None:
                logits = logits.masked_fill(~legal, -1e9)
            onehot = straight_through_onehot(logits, self.generator)
            logp = logits.log_softmax(-1)
            choice_logp, choice_entropy = (logp * onehot.detach()).sum(-1), -(logp.exp() * logp).sum(-1)
            if not self.head.values:
                return onehot, choice_logp, choice_entropy
        value = Kumaraswamy.from_outputs(out[..., k:])
        u = value.rsample(self.generator)
        if not k:
            return u[..., None], value.log_prob(u.detach()), value.entropy()
        step = model.value_step(feature) if model.mask is not None else torch.zeros_like(u, dtype=torch.bool)
        action = torch.cat([onehot * ~step[..., None], (u * step)[..., None]], -1)
        return (action, torch.where(step, value.log_prob(u.detach()), choice_logp),
                torch.where(step, value.entropy(), choice_entropy))


class DreamerV1(Dreamer):
    """Dreamer V1: Gaussian latents, KL with free nats, actor by dynamics backpropagation."""

    Config = DreamerV1Config
    name = "dreamer_v1"


class DreamerV2(Dreamer):
    """Dreamer V2: 32 x 32 categorical latents, KL balancing, REINFORCE actor (discrete)."""

    name = "dreamer_v2"
