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
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlnas.agents.architecture_agent import Proposer
from rlnas.agents.base import Agent, AgentConfig, Callback
from rlnas.agents.policies import ActionHead, Kumaraswamy
from rlnas.agents.priors import choice_classes, nb201_proxy_columns, spread_design
from rlnas.agents.replay import SequenceReplay
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
from rlnas.spaces import Decisions, NB201Space
from rlnas.world_models.rssm import RSSM, State, straight_through_onehot
from rlnas.world_models.world_model import WorldModel, mlp


@dataclass
class DreamerConfig(AgentConfig):
    """Dreamer V2's published settings (its Appendix, Atari). ``nas``: a search pays for
    100-200 architectures, so smaller networks, a ten-episode prefill, training per new
    architecture; scores differ by a percent, so reward weight 100 and entropy 1e-2 (at 1e-3
    the search collapses); horizon 6 and gamma 1 (an NB201 episode is 6 decisions, one
    reward); each episode planned in the model by one of five reward heads. Measured in
    docs/benchmarks.md, "Dreamer on NB201"."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(deter_size=128, hidden_size=128, stoch_size=16, classes=16, units=128, reward_scale=100.0,
                    discount_scale=1.0, model_lr=1e-3, actor_lr=3e-4, critic_lr=3e-4, horizon=6, gamma=1.0,
                    entropy=1e-2, seq_len=12, updates_per_evaluation=8, train_every=1, prefill=60,
                    buffer_size=100_000, reward_heads=5, candidates=256, planning_rounds=2, design_spread=2,
                    cell_prior=True),
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
    reward_heads: int = setting(1, "the reward head's ensemble: imagination trains on their mean, planning reads "
                                   "one head drawn per episode", INT_AT_LEAST_1)
    candidates: int = setting(0, "NAS envs with choices only: cells imagined from the actor at each episode's "
                                 "start, of which it builds the unevaluated one its head scores best; 0: the "
                                 "actor's own actions", INT_AT_LEAST_0)
    planning_rounds: int = setting(0, "rounds in which the candidates' best gain their unseen neighbours",
                                   INT_AT_LEAST_0)
    beam: int = setting(5, "the candidates whose neighbours each planning round adds", INT_AT_LEAST_1)
    design_spread: int = setting(0, "NB201: the prefill builds SynFlow's best cells, each at least this many "
                                    "decisions from the others; 0: random legal actions", INT_AT_LEAST_0)
    cell_prior: bool = setting(False, "NB201: a finished cell's observation also holds its data-free proxies "
                                      "(SynFlow, parameter count, as ranks) and each decision's op class")


@dataclass
class DreamerV1Config(DreamerConfig):
    """Dreamer V1's published settings ("Dream to Control", Appendix A). ``nas``: as V2's
    with V1's latents and KL, on the step schedule (18 updates per evaluation collapse V1's
    actor onto repeats) and entropy 3e-2 (at 1e-2 its search settles on a few cells); each
    episode planned in the model as V2's is."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(deter_size=128, hidden_size=128, units=128, reward_scale=100.0, model_lr=1e-3, actor_lr=3e-4,
                    critic_lr=3e-4, horizon=6, gamma=1.0, entropy=3e-2, batch_size=16, seq_len=12, train_every=1,
                    train_steps=1, prefill=60, buffer_size=100_000, reward_heads=5, candidates=256,
                    planning_rounds=2, design_spread=2, cell_prior=True),
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
    """``R_t = r_t + d_t ((1 - lambda) v_{t+1} + lambda R_{t+1})``, ``R_H = v_H``, over ``(H, ...)``."""
    returns = []
    last = values[-1]
    for t in reversed(range(rewards.shape[0])):
        last = rewards[t] + discounts[t] * ((1 - lambda_) * values[t + 1] + lambda_ * last)
        returns.append(last)
    return torch.stack(returns[::-1])


class Dreamer(Proposer, Agent):
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
    EPISODES_KEPT = 20_000  # cells whose planning episodes are remembered (NB201 has 15,625)

    def __init__(self, env: gym.Env, config: DreamerConfig | None = None, seed: int = 0, device: str = "cpu",
                 **settings: Any):
        super().__init__(env, config, seed, device, **settings)
        hp = self.config
        if len(self.observation_space.shape) != 1:
            raise TypeError(f"Dreamer here needs a flat Box observation, got {self.observation_space}")
        self.head = ActionHead(self.action_space, self.name)
        self._cell_prior(getattr(env.unwrapped, "space", None))
        obs_dim, self.num_actions = self.observation_space.shape[0] + self.extra_size, self.head.choices
        self.action_dim = self.num_actions + self.head.values  # the choice's one-hot, then the value's slot
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

    def _cell_prior(self, space: Any) -> None:
        """What NB201 tells of a cell before it is paid for (``cell_prior``: its proxies and op
        classes, as extra observation slots; ``design_spread``: the prefill's cells), and
        whether episodes are planned (``candidates``, on a NAS env of choices)."""
        hp, nb201 = self.config, isinstance(space, NB201Space)
        self.plans = hp.candidates > 0 and space is not None and not self.head.values
        self.proxies = self.design = None
        self.extra_size = 0
        if nb201 and hp.cell_prior:
            self.proxies = torch.stack(nb201_proxy_columns(space), 1).numpy().astype(np.float32)
            classes = np.array(choice_classes(space))  # (D, K) class ids
            self.class_onehot = np.eye(classes.max() + 1, dtype=np.float32)[classes]  # (D, K, C)
            self.radix = space.max_choices ** np.arange(space.num_decisions - 1, -1, -1)
            self.extra_size = self.proxies.shape[1] + self.class_onehot[:, 0].size
        if nb201 and hp.design_spread > 0:
            cells, synflow = torch.tensor(space.all_cells()), nb201_proxy_columns(space)[0]
            self.design = spread_design(cells, synflow, -(-hp.prefill // space.num_decisions), hp.design_spread)

    def _observation(self, obs: np.ndarray) -> np.ndarray:
        """The env's observation, and with ``cell_prior`` the extra slots: zeros until the
        cell is finished (the NASEnv cursor's last slot), then its proxies and op classes."""
        if self.proxies is None:
            return obs
        extra = np.zeros(self.extra_size, np.float32)
        n, k = self.class_onehot.shape[:2]
        if obs[n * k + n] == 1.0:
            cell = obs[:n * k].reshape(n, k).argmax(1)
            extra[:self.proxies.shape[1]] = self.proxies[cell @ self.radix]
            extra[self.proxies.shape[1]:] = self.class_onehot[np.arange(n), cell].ravel()
        return np.concatenate([obs, extra])

    # -- acting -------------------------------------------------------------------------
    def _value_step(self, mask: np.ndarray | None) -> bool:
        """Whether the next action is a value: its mask allows no choice (or there are none)."""
        return self.head.values and (not self.num_actions if mask is None else not mask.any())

    def _vector(self, action: int | float, mask: np.ndarray | None) -> np.ndarray:
        """An action as the RSSM reads it: a choice one-hot, or a value in the last slot."""
        vector = np.zeros(self.action_dim, np.float32)
        if self._value_step(mask):
            vector[-1] = action
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
        state = self._filter(state, action, self._observation(obs), sample=not deterministic)
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
            plan, made, done = self._plan(obs), [], False  # planned first, as propose() plans
            state = self._filter(None, None, obs)
            while not done and self.env.within(budget):
                chosen = self._choose(state, mask, plan, len(made))
                made.append(chosen)
                action = self._vector(chosen, mask)
                obs, reward, terminated, truncated, info = self.env.step(chosen)
                done = terminated or truncated
                obs, mask = self._observation(obs), info.get("action_mask")
                state = self._filter(state, action, obs)
                if done and "arch" in info:
                    self.seen[tuple(made)] = float(reward)
                    self._log_surrogate(self._predicted_score(state), float(reward))
                episode.append((obs, action, float(reward), bool(terminated), False, mask))
                if per_step:  # the papers' schedule: store and train as the steps come
                    self._store(episode)
            self._learn_from(episode)
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

    # -- planning the episode's cell (NAS envs) ----------------------------------------
    def _plan(self, obs: np.ndarray) -> Decisions | None:
        """The cell this episode builds, None for the actor's own actions: the design's next
        during the prefill, then (``candidates``) the best of the actor's imagined cells."""
        fresh = [] if self.design is None else [c for c in self.design if self._unseen(c)]
        if self.steps < self.config.prefill:
            return fresh[0] if fresh else None
        return self._imagined_best(obs) if self.plans else None

    def _unseen(self, cell: Decisions) -> bool:
        return cell not in self.seen and cell not in self.in_flight

    @torch.no_grad()
    def _imagined_best(self, obs: np.ndarray) -> Decisions | None:
        """Imagine ``candidates`` cells from the actor in the world model, score the unseen ones
        by one reward head drawn for this episode (Thompson sampling over the ensemble), then
        ``planning_rounds`` times add the unseen neighbours of the ``beam`` best: the actor
        says where to look, the model where to go. None if every candidate is seen."""
        hp, env, rssm = self.config, self.nas_env(), self.model.rssm
        start = self._filter(None, None, obs)
        state = State(*(x.expand(hp.candidates, *x.shape[1:]) for x in (start.deter, start.stoch, start.stats)))
        picks = []
        for _ in range(env.space.num_decisions):
            logits = self.actor(state.feature)
            legal = self.model.legal(state.feature)
            if legal is not None:
                logits = logits.masked_fill(~legal, -torch.inf)
            onehot = straight_through_onehot(logits, self.generator)
            picks.append(onehot.argmax(-1))
            state = rssm.img_step(state, onehot, self.generator)
        head = int(self.rng.integers(hp.reward_heads))
        best = sorted(self.seen, key=self.seen.__getitem__, reverse=True)[:hp.beam]
        near = [n for cell in best for n in env.space.neighbours(cell, self.rng)]
        scored = self._scored([c for c in dict.fromkeys([*map(tuple, torch.stack(picks, 1).tolist()), *near])
                               if self._unseen(c)], head)
        for _ in range(hp.planning_rounds):
            leaders = sorted(scored, key=scored.__getitem__, reverse=True)[:hp.beam]
            near = dict.fromkeys(n for cell in leaders for n in env.space.neighbours(cell, self.rng))
            scored |= self._scored([n for n in near if n not in scored and self._unseen(n)], head)
        return max(scored, key=scored.__getitem__) if scored else None

    def _scored(self, cells: list[Decisions], head: int) -> dict[Decisions, float]:
        """Reward head ``head``'s score of each legal cell, filtered through the model as its
        episode would go (the observations are the env's previews)."""
        env, n = self.nas_env(), self.nas_env().space.num_decisions
        episodes = {c: e for c in cells if (e := self._episode_of(env, c)) is not None}
        if not episodes:
            return {}
        obs, actions = (torch.as_tensor(np.stack(x, 1), device=self.device)
                        for x in zip(*episodes.values(), strict=True))
        firsts = torch.zeros(n + 1, len(episodes), device=self.device)
        firsts[0] = 1.0
        post, _ = self.model.rssm.observe(self.model.encoder(obs), actions, firsts, generator=self.generator,
                                          sample=False)
        return dict(zip(episodes, self.model.reward_heads(post.feature[-1])[:, head].tolist(), strict=True))

    def _episode_of(self, env: Any, cell: Decisions) -> tuple[np.ndarray, np.ndarray] | None:
        """A cell's observations and actions ``(D + 1, ...)`` as its episode has them; None if
        illegal. Remembered: the planning rounds score the same neighbourhoods again and again."""
        if cell in self._episodes:
            return self._episodes[cell]
        observations, actions = [], [np.zeros(self.action_dim, np.float32)]
        for t in range(len(cell) + 1):
            obs, mask = env.preview(cell[:t])
            observations.append(self._observation(obs))
            if t < len(cell):
                if not mask[cell[t]]:
                    self._episodes[cell] = None
                    return None
                actions.append(self._vector(cell[t], mask))
        if len(self._episodes) >= self.EPISODES_KEPT:
            self._episodes.clear()
        self._episodes[cell] = (np.stack(observations), np.stack(actions))
        return self._episodes[cell]

    def _learn_from(self, episode: list[tuple]) -> None:
        """The NAS schedule: store a new architecture's episode and train on it."""
        if self.config.updates_per_evaluation is not None and self.env.stale_episodes == 0:
            self._store(episode)
            self._train(self.config.updates_per_evaluation)

    # -- proposing whole cells (parallel runs) ------------------------------------------
    def propose(self) -> Decisions:
        """Act through a cell's previews as an episode would, without stepping the env."""
        env, decisions, action, state = self.nas_env(), [], None, None
        plan = self._plan(self._observation(env.preview(())[0]))
        for t in range(env.space.num_decisions):
            obs, mask = env.preview(decisions)
            state = self._filter(state, action, self._observation(obs))
            decisions.append(self._choose(state, mask, plan, t))
            action = self._vector(decisions[-1], mask)
        state = self._filter(state, action, self._observation(env.preview(decisions)[0]))
        self.predicted[tuple(decisions)] = self._predicted_score(state)
        return tuple(decisions)

    def observe(self, decisions: Decisions, score: float) -> None:
        """Learn from the cell's episode, rebuilt from its previews as learn() stores it."""
        env, decisions = self.nas_env(), tuple(decisions)
        self.seen[decisions] = score
        if decisions in self.predicted:
            self._log_surrogate(self.predicted.pop(decisions), score)
        obs, mask = env.preview(())
        episode = [(self._observation(obs), None, 0.0, False, True, mask)]
        for t, action in enumerate(decisions):
            vector = self._vector(action, mask)
            obs, mask = env.preview(decisions[:t + 1])
            obs = self._observation(obs)
            last = t + 1 == len(decisions)
            episode.append((obs, vector, score if last else 0.0, last, False, mask))
        if self.config.updates_per_evaluation is None:
            self._store(episode)
        self._learn_from(episode)

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
                out = self.actor(feature if dynamics else feature.detach())
                action, logp, entropy = self._imagine_action(out, feature.detach())
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
