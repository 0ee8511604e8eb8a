"""Differentiable one-shot NAS on the weight-sharing supernet: DARTS, GDAS and SNAS.

Every supernet edge mixes all its ops, weighted by a relaxation of learnable logits alpha:
softmax for DARTS (Liu et al. 2019), a straight-through Gumbel-softmax sample for GDAS (Dong
& Yang 2019), a relaxed Gumbel sample for SNAS (Xie et al. 2019), or a sparse map. Each step
alternates two updates on two halves of the training split (DARTS Algorithm 1):

1. architecture (Adam on alpha, second half): first order ``g = dL_val(w, alpha)/dalpha``;
   second order ``g = dL_val(w', alpha)/dalpha - xi (dL_train(w+) - dL_train(w-))/dalpha / (2 eps)``
   with ``w' = w - xi dL_train/dw``, ``w+- = w +- eps dL_val(w')/dw'``, ``eps = 0.01 / ||dL_val/dw'||``
   (the finite-difference Hessian-vector product of DARTS eq. 8);
2. weights (SGD with momentum, cosine learning rate, first half).

The derived cell (NB201: the strongest op per edge; NASNet: per block the two inputs whose
strongest op weighs most, added) is built through the env, so the run's evaluator scores
it. Each epoch logs the weights' entropy and the derived cell's parameter-free share, where
a collapse onto skip connections shows. An epoch's batches and noise come from (seed,
epoch), so a run resumed mid-epoch redoes that epoch exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.agents.architecture_agent import ArchitectureAgent
from rlnas.agents.base import AgentConfig, Callback
from rlnas.core.settings import INT_AT_LEAST_0, INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, OneOf, redefault, setting
from rlnas.data.sources import load_source
from rlnas.envs.monitor import Budget
from rlnas.networks.ops import PARAMETER_FREE
from rlnas.networks.relaxations import RELAXATIONS, STOCHASTIC, expected, relax
from rlnas.networks.supernet import Supernet
from rlnas.nn.space import ModelSpace
from rlnas.spaces import CELLS, COMBINATIONS, NB201_EDGES, Decisions, NB201Space, SearchSpace


def parameter_free_fraction(space: SearchSpace, decisions: Sequence[int]) -> float:
    """The share of a cell's ops (a model space's LayerChoices) that have no weights: near 1 is a
    collapsed search."""
    if isinstance(space, ModelSpace):
        classes = space.choice_classes()
        layers = [s for s, (d, _) in enumerate(space.step_decisions()) if d.kind == "layer"]
        return sum(classes[s][decisions[s]] == 1 for s in layers) / max(len(layers), 1)
    if isinstance(space, NB201Space):
        ops = [space.ops[d] for d in decisions]
    else:
        ops = [op for cell in CELLS for _, _, *pair, _ in space.cell(decisions, cell) for op in pair]
    return sum(op in PARAMETER_FREE for op in ops) / len(ops)


def normalised_entropy(weights: dict[str, torch.Tensor]) -> float:
    """Mean entropy of the architecture weights per row (edge, decision), over log(#options): 1 is uniform."""
    rows = [row for w in weights.values() for row in w if len(row) > 1]
    return float(np.mean([-(r * r.clamp(min=1e-12).log()).sum() / math.log(len(r)) for r in rows]))


def _grad(loss: torch.Tensor, inputs: Sequence[torch.Tensor], retain_graph: bool = False) -> list[torch.Tensor]:
    """d loss / d inputs, zeros for inputs the loss does not reach (ops off the path)."""
    grads = torch.autograd.grad(loss, list(inputs), retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)]


def unrolled_gradient(train_loss: Callable[[], torch.Tensor], valid_loss: Callable[[], torch.Tensor],
                      weights: Sequence[torch.Tensor], alphas: Sequence[torch.Tensor], xi: float,
                      r: float = 0.01) -> list[torch.Tensor]:
    """DARTS' second-order gradient (eq. 7-8); the weights are back as they were on return."""
    original = [w.detach().clone() for w in weights]
    step = _grad(train_loss(), weights)
    with torch.no_grad():
        for w, g in zip(weights, step, strict=True):
            w.sub_(xi * g)  # w' = w - xi dL_train/dw
    grads = _grad(valid_loss(), [*alphas, *weights])
    d_alpha, d_weights = grads[:len(alphas)], grads[len(alphas):]
    eps = r / torch.cat([g.flatten() for g in d_weights]).norm().clamp(min=1e-12)

    def train_grad_at(sign: float) -> list[torch.Tensor]:
        with torch.no_grad():
            for w, w0, d in zip(weights, original, d_weights, strict=True):
                w.copy_(w0 + sign * eps * d)
        return _grad(train_loss(), alphas)

    plus, minus = train_grad_at(1.0), train_grad_at(-1.0)
    with torch.no_grad():
        for w, w0 in zip(weights, original, strict=True):
            w.copy_(w0)
    return [da - xi * (p - m) / (2 * eps) for da, p, m in zip(d_alpha, plus, minus, strict=True)]


@dataclass
class DARTSConfig(AgentConfig):
    """DARTS's settings (Liu et al. 2019). ``nas``: ``arch_lr`` 0.01, since digits gives 8
    architecture steps an epoch where CIFAR-10 gives 390: at the papers' 3e-4 alpha would
    not move."""

    PRESETS: ClassVar[dict] = {"nas": {"arch_lr": 0.01}}
    relaxation: str = setting("softmax", "how architecture logits become op weights", OneOf(RELAXATIONS))
    epochs: int = setting(50, "passes over the weights' half of the training split", INT_AT_LEAST_1)
    order: int = setting(1, "1: first-order DARTS; 2: the unrolled gradient (deterministic relaxations only)",
                         OneOf((1, 2)))
    tau_max: float = setting(1.0, "the Gumbel temperature at the first epoch (unused by softmax)", POSITIVE)
    tau_min: float = setting(1.0, "the Gumbel temperature at the last epoch", POSITIVE)
    tau_schedule: str = setting("linear", "how the temperature goes from tau_max to tau_min",
                                OneOf(("linear", "exponential")))
    channels: int = setting(8, "the supernet's channels in its first stage", INT_AT_LEAST_1)
    cells_per_stage: int = setting(1, "the supernet's cells in each of its three stages", INT_AT_LEAST_0)
    batch_size: int = setting(64, "minibatch size of both updates", INT_AT_LEAST_1)
    lr: float = setting(0.025, "the weights' SGD learning rate, cosine-annealed to lr_min", POSITIVE)
    lr_min: float = setting(0.001, "the weights' learning rate at the last epoch", NON_NEGATIVE)
    momentum: float = setting(0.9, "the weights' SGD momentum", NON_NEGATIVE)
    weight_decay: float = setting(3e-4, "the weights' weight decay", NON_NEGATIVE)
    grad_clip: float = setting(5.0, "the weights' gradient norm clip", POSITIVE)
    arch_lr: float = setting(3e-4, "the architecture logits' Adam learning rate (betas 0.5, 0.999)", POSITIVE)
    arch_weight_decay: float = setting(1e-3, "the architecture logits' weight decay", NON_NEGATIVE)
    evaluate_every: int = setting(0, "also build the derived cell through the env every N epochs (0: the last "
                                     "derived cell alone)", INT_AT_LEAST_0)

    def validate(self) -> None:
        if self.order == 2 and self.relaxation in STOCHASTIC:
            raise ValueError(f"{self.owner}: order=2 differentiates through a fixed loss; relaxation="
                             f"{self.relaxation!r} samples new noise every forward pass: use order=1, or a "
                             "deterministic relaxation (softmax, sparsemax, entmax15)")


class DifferentiableSearch(ArchitectureAgent):
    """One-shot search by gradient descent on architecture logits."""

    Config = DARTSConfig
    config: DARTSConfig
    acts_on_values = False  # a relaxation weighs choices; a value has none to weigh
    checkpoint_each_callback = True  # an epoch lies between two callbacks
    checkpointed = ("supernet", "alpha", "w_optimizer", "a_optimizer", "epoch", "history")

    def __init__(self, env: gym.Env, config: DARTSConfig | None = None, seed: int = 0, device: str = "cpu",
                 **settings: Any):
        super().__init__(env, config, seed, device, **settings)
        c = self.config
        evaluator = self.nas_env().evaluator
        evaluator = getattr(evaluator, "inner", evaluator)  # under the store
        data = load_source(evaluator.run.dataset).load()  # the run's data: the dataset group
        split = torch.randperm(len(data.train.y), generator=torch.Generator().manual_seed(seed))
        half = len(split) // 2
        if half < c.batch_size:
            raise ValueError(f"{self.name}: batch_size={c.batch_size} is more than half of {data.name}'s training "
                             f"split ({half} images), the batch each update draws from; lower batch_size")
        self.train_x, self.train_y = (t[split[:half]].to(self.device) for t in (data.train.x, data.train.y))
        self.arch_x, self.arch_y = (t[split[half:]].to(self.device) for t in (data.train.x, data.train.y))
        self.valid_x, self.valid_y = data.valid.x.to(self.device), data.valid.y.to(self.device)

        torch.manual_seed(seed)
        self.supernet = Supernet(self.space, data.input_shape[0], data.num_classes, c.channels,
                                 c.cells_per_stage).to(self.device)
        generator = torch.Generator().manual_seed(seed)
        self.alpha = nn.ParameterDict({name: nn.Parameter((1e-3 * torch.randn(shape, generator=generator)).to(
            self.device)) for name, shape in self.supernet.mixture_shapes().items()})
        self.w_optimizer = torch.optim.SGD(self.supernet.parameters(), lr=c.lr, momentum=c.momentum,
                                           weight_decay=c.weight_decay)
        self.a_optimizer = torch.optim.Adam(self.alpha.values(), lr=c.arch_lr, betas=(0.5, 0.999),
                                            weight_decay=c.arch_weight_decay)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    # -- the schedule -------------------------------------------------------------------
    def tau(self) -> float:
        c = self.config
        frac = self.epoch / max(c.epochs - 1, 1)
        if c.tau_schedule == "linear":
            return c.tau_max + frac * (c.tau_min - c.tau_max)
        return c.tau_max * (c.tau_min / c.tau_max) ** frac

    def learning_rate(self) -> float:
        c = self.config
        return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1 + math.cos(math.pi * self.epoch / c.epochs))

    # -- one epoch ----------------------------------------------------------------------
    def loss(self, x: torch.Tensor, y: torch.Tensor, tau: float, generator: torch.Generator,
             arch_grad: bool = True) -> torch.Tensor:
        """The supernet's cross-entropy under freshly relaxed weights (no alpha graph if not ``arch_grad``)."""
        with torch.set_grad_enabled(arch_grad and torch.is_grad_enabled()):
            weights = {k: relax(a, self.config.relaxation, tau, generator) for k, a in self.alpha.items()}
        self.supernet.weigh(weights)
        return F.cross_entropy(self.supernet(x), y)

    def train_epoch(self) -> dict[str, float]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)  # batches and noise
        tau, lr = self.tau(), self.learning_rate()
        for group in self.w_optimizer.param_groups:
            group["lr"] = lr
        weights, alphas = list(self.supernet.parameters()), list(self.alpha.values())
        train_order = torch.randperm(len(self.train_y), generator=generator)
        arch_order = torch.randperm(len(self.arch_y), generator=generator)
        self.supernet.train()
        train_losses, arch_losses, size = [], [], self.config.batch_size
        for step in range(len(self.train_y) // size):
            batch = slice(step * size, (step + 1) * size)
            xt, yt = self.train_x[train_order[batch]], self.train_y[train_order[batch]]
            xv, yv = self.arch_x[arch_order[batch]], self.arch_y[arch_order[batch]]

            # 1. architecture step on the second half
            if self.config.order == 1:
                arch_loss = self.loss(xv, yv, tau, generator)
                grads = _grad(arch_loss, alphas)
            else:  # a deterministic relaxation: every call mixes by the same weights
                with torch.no_grad():
                    arch_loss = self.loss(xv, yv, tau, generator)
                grads = unrolled_gradient(partial(self.loss, xt, yt, tau, generator),
                                          partial(self.loss, xv, yv, tau, generator), weights, alphas, xi=lr)
            for a, g in zip(alphas, grads, strict=True):
                a.grad = g
            self.a_optimizer.step()

            # 2. weight step on the first half
            train_loss = self.loss(xt, yt, tau, generator, arch_grad=False)
            self.w_optimizer.zero_grad(set_to_none=True)
            train_loss.backward()
            nn.utils.clip_grad_norm_(weights, self.config.grad_clip)
            self.w_optimizer.step()
            train_losses.append(train_loss.item())
            arch_losses.append(arch_loss.item())
        return {"train_loss": float(np.mean(train_losses)), "arch_loss": float(np.mean(arch_losses)),
                "tau": tau, "lr": lr}

    # -- the cell -----------------------------------------------------------------------
    def expected_weights(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {k: expected(a, self.config.relaxation) for k, a in self.alpha.items()}

    def derive(self, weights: dict[str, torch.Tensor] | None = None) -> Decisions:
        """The discrete cell from ``weights`` (default: the expected weights now)."""
        weights = self.expected_weights() if weights is None else weights
        if isinstance(self.space, ModelSpace):
            return self.space.strongest([weights[f"d{i}"][0] for i in range(len(self.space.decisions))])
        if isinstance(self.space, NB201Space):
            return self.space.validate(weights["cell"].argmax(-1).tolist())
        keep = torch.tensor([float(op != "none") for op in self.space.ops], device=self.device)
        decisions: list[int] = []
        for cell in CELLS:
            for rows in weights[cell].split(self.space.block_inputs):
                rows = rows * keep
                first, second = rows.max(-1).values.topk(2).indices.tolist()
                decisions += [first, second, int(rows[first].argmax()), int(rows[second].argmax()),
                              COMBINATIONS.index("add")]
        return self.space.validate(decisions)

    # -- the agent ----------------------------------------------------------------------
    def learn(self, budget: Budget, callback: Callback | None = None) -> DifferentiableSearch:
        epochs, every = self.config.epochs, self.config.evaluate_every
        while self.epoch < epochs and self.env.within(budget):
            start = time.perf_counter()
            stats = self.train_epoch()
            self.epoch += 1
            weights = self.expected_weights()
            derived = self.derive(weights)
            record = {"epoch": self.epoch, **stats, "entropy": normalised_entropy(weights),
                      "parameter_free": parameter_free_fraction(self.space, derived),
                      "supernet_acc": self.supernet.score(derived, self.valid_x, self.valid_y)[0],
                      "derived": self.space.to_string(derived), "seconds": time.perf_counter() - start}
            self.history.append(record)
            self._log(record, weights)
            if self.epoch == epochs or (every and self.epoch % every == 0):
                self.play(derived)
            if callback is not None:
                callback(self)
        return self

    def _log(self, record: dict[str, Any], weights: dict[str, torch.Tensor]) -> None:
        for key in ("train_loss", "arch_loss", "tau", "lr", "entropy", "parameter_free", "supernet_acc", "seconds"):
            self.logger.scalar(f"oneshot/{key}", record[key], record["epoch"])
        self.logger.text("oneshot/derived", record["derived"], record["epoch"])

        def heat_map():
            from rlnas.drawing import weights_figure  # matplotlib, only when a logger keeps the figure

            return weights_figure({k: w.cpu().numpy() for k, w in weights.items()}, self.row_labels(),
                                  list(self.space.ops), f"epoch {record['epoch']}")

        if not isinstance(self.space, ModelSpace):  # its decisions have options of their own, not one op list
            self.logger.figure("oneshot/arch_weights", heat_map, record["epoch"])

    def row_labels(self) -> dict[str, list[str]]:
        """What each row of the architecture weights is: an NB201 edge, or a NASNet (block, input)."""
        if isinstance(self.space, NB201Space):
            return {"cell": [f"{src}->{dst}" for dst, src in NB201_EDGES]}
        inputs = self.space.choice_names(0)
        pairs = [f"b{b} <- {inputs[i]}" for b, n in enumerate(self.space.block_inputs) for i in range(n)]
        return {cell: pairs for cell in CELLS}

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None,
                deterministic: bool = False, episode_start: bool = False) -> int:
        """The derived cell's decision at ``obs``'s step: one answer, not a policy to sample."""
        return self.derive()[min(self.step_of(obs), self.space.num_decisions - 1)]

    def progress(self) -> tuple[int, int, str]:
        return self.epoch, self.config.epochs, "epoch"

    def search_report(self) -> dict[str, Any]:
        return {"relaxation": self.config.relaxation, "order": self.config.order, "epochs": self.epoch,
                "derived": self.space.to_string(self.derive()), "history": self.history}


class DARTS(DifferentiableSearch):
    """DARTS (Liu et al. 2019): softmax over each edge's ops; ``order=2`` unrolls."""

    name = "darts"


@dataclass
class GDASConfig(DARTSConfig):
    """GDAS (Dong & Yang 2019): a straight-through Gumbel-softmax path, tau 10 -> 0.1."""

    relaxation: str = redefault(DARTSConfig, "relaxation", "gumbel_hard")
    tau_max: float = redefault(DARTSConfig, "tau_max", 10.0)
    tau_min: float = redefault(DARTSConfig, "tau_min", 0.1)


class GDAS(DifferentiableSearch):
    Config = GDASConfig
    name = "gdas"


@dataclass
class SNASConfig(DARTSConfig):
    """SNAS (Xie et al. 2019): a relaxed Gumbel-softmax sample, tau 1 -> 0.03 exponentially."""

    relaxation: str = redefault(DARTSConfig, "relaxation", "gumbel")
    tau_min: float = redefault(DARTSConfig, "tau_min", 0.03)
    tau_schedule: str = redefault(DARTSConfig, "tau_schedule", "exponential")


class SNAS(DifferentiableSearch):
    Config = SNASConfig
    name = "snas"
