"""Dreamer's settings: V2's published ones (its Appendix, Atari), V1's ("Dream to Control",
Appendix A), and each one's presets for NAS and CartPole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rlnas.agents.base import AgentConfig
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


@dataclass
class DreamerConfig(AgentConfig):
    """Dreamer V2's published settings (its Appendix, Atari). ``nas``: a search pays for
    100-200 architectures, so smaller networks, a ten-episode prefill, training per new
    architecture; scores differ by a percent, so reward weight 100 and entropy 1e-2 (at 1e-3
    the search collapses); horizon 6 and gamma 1 (an NB201 episode is 6 decisions, one
    reward); each episode planned in the model by one of five reward heads; the action that
    finishes a cell carries the cell's data-free prior into the deterministic state (the
    discrete latents lose a continuous proxy: docs/world-models.md). Measured in
    docs/benchmarks.md, "Dreamer on NB201"."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(deter_size=128, hidden_size=128, stoch_size=16, classes=16, units=128, reward_scale=100.0,
                    discount_scale=1.0, model_lr=1e-3, actor_lr=3e-4, critic_lr=3e-4, horizon=6, gamma=1.0,
                    entropy=1e-2, seq_len=12, updates_per_evaluation=4, train_every=1, prefill=60,
                    buffer_size=100_000, reward_heads=5, candidates=256, planning_rounds=2, design_spread=2,
                    cell_prior=True, prior_in_action=True),
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
    prior_in_action: bool = setting(False, "with cell_prior: the action that finishes a cell carries its prior "
                                           "too, into the RSSM's deterministic state")


@dataclass
class DreamerV1Config(DreamerConfig):
    """Dreamer V1's published settings ("Dream to Control", Appendix A). ``nas``: as V2's
    with V1's latents and KL, and entropy 3e-2 (at 1e-2 its search settles on a few cells);
    4 updates per new architecture (18 collapse V1's actor onto repeats; one per step finds
    the same cells in twice the time); each episode planned in the model as V2's is. Its
    Gaussian latents pass the cell prior on without ``prior_in_action``."""

    PRESETS: ClassVar[dict] = {
        "nas": dict(deter_size=128, hidden_size=128, units=128, reward_scale=100.0, model_lr=1e-3, actor_lr=3e-4,
                    critic_lr=3e-4, horizon=6, gamma=1.0, entropy=3e-2, batch_size=16, seq_len=12,
                    updates_per_evaluation=4, prefill=60, buffer_size=100_000, reward_heads=5, candidates=256,
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
