"""Weight-sharing supernets (ENAS, Pham et al. 2018; SPOS, Guo et al. 2020) and their trainer.

Every op at every position owns its weights once. ``Supernet.select(decisions)`` picks one
path and the forward pass runs only that path, so two architectures that use the same op
at the same position read, and train, the same tensors. ``Supernet.weigh(weights)`` runs
every op at once instead, each scaled by its architecture weight (DARTS's mixed op): what
the differentiable searches of ``agents/darts.py`` train.

BatchNorm always uses the statistics of the batch at hand (no running averages): a shared
layer's running averages would mix every path that ever ran through it. NAS-Bench-201's
and ENAS's weight-sharing code do the same. It also makes a score a pure function of the
weights, given the fixed validation subset it is computed on.

:class:`SupernetTrainer` owns a supernet, its optimizer and its data stream. It has two
training modes:

* ``oneshot`` (SPOS): ``warmup_epochs`` epochs of uniformly sampled paths before the
  search; during the search the weights are frozen and scores are comparable.
* ``enas``: every evaluated architecture is first trained for ``train_steps`` SGD steps,
  interleaved with the search. Its score depends on the weights' state, so each
  evaluation records ``weight_version`` (the optimizer steps taken before it was scored).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.datasets import load_dataset
from rlnas.networks import NASNetNetwork, NB201Cell, NB201Network
from rlnas.ops import NASNET_OP_BUILDERS, NB201_OP_BUILDERS, FactorizedReduce, ReLUConvBN
from rlnas.spaces import NB201_EDGES, NASNetSpace, NB201Space, SearchSpace
from rlnas.store import Evaluation

MODES = ("oneshot", "enas")


def mixture(ops: Sequence[nn.Module], weights: torch.Tensor, active: Sequence[int], x: torch.Tensor) -> torch.Tensor:
    """sum_k weights[k] * ops[k](x) over the ops whose weight is not exactly zero: a sparse
    relaxation gives the others no gradient either, and a straight-through one-hot (GDAS)
    runs its one path, its gradient reaching every logit through that path's weight."""
    return sum(weights[k] * ops[k](x) for k in active)


def _nonzero(weights: torch.Tensor) -> list[list[int]]:
    return [[k for k, nz in enumerate(row) if nz] for row in (weights != 0).tolist()]


class NB201SuperCell(NB201Cell):
    """Every NB201 op on every edge; ``choice[e]`` is the op edge ``e`` runs, or with
    ``weights`` (edges x ops) every edge is the mixture of its ops."""

    def __init__(self, ops: Sequence[str], channels: int):
        nn.Module.__init__(self)
        self.edges = nn.ModuleList(nn.ModuleList(NB201_OP_BUILDERS[op](channels, 1) for op in ops)
                                   for _ in NB201_EDGES)
        self.choice = [0] * len(NB201_EDGES)
        self.weights: torch.Tensor | None = None

    def select(self, space: NB201Space, decisions: Sequence[int]) -> None:
        self.choice = list(decisions)  # an NB201 decision is the op index of its edge

    def weigh(self, mixed: Mapping[str, tuple] | None) -> None:
        self.weights, self.active = (None, None) if mixed is None else mixed["cell"]

    def edge(self, e: int) -> Callable[[torch.Tensor], torch.Tensor]:
        if self.weights is None:
            return self.edges[e][self.choice[e]]
        return partial(mixture, self.edges[e], self.weights[e], self.active[e])


class NASNetSuperCell(nn.Module):
    """Every op for every (block, operand, input) triple of a NASNet / ENAS cell.

    The cell's output concatenates the blocks no other block consumed, so its width varies
    with the architecture. As in ENAS, a 1x1 convolution whose weight is sliced to the
    loose ends brings it back to ``channels``, keeping the next cells' inputs fixed.

    With ``weights`` (one row of op weights per (block, input) pair, block by block) the
    cell is DARTS's: block ``b`` sums the mixed ops of every earlier state, run through the
    first operand's ops, and the output concatenates every block.
    """

    def __init__(self, num_blocks: int, ops: Sequence[str], c_pp: int, c_p: int, channels: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, channels) if reduction_prev else ReLUConvBN(c_pp, channels, 1)
        self.pre1 = ReLUConvBN(c_p, channels, 1)
        # ops[block][operand][input][op]
        self.ops = nn.ModuleList(
            nn.ModuleList(
                nn.ModuleList(
                    nn.ModuleList(NASNET_OP_BUILDERS[op](channels, 2 if reduction and inp < 2 else 1)
                                  for op in ops)
                    for inp in range(block + 2))
                for _operand in range(2))
            for block in range(num_blocks))
        self.merges = nn.ModuleList(ReLUConvBN(2 * channels, channels, 1) for _ in range(num_blocks))
        self.out_weight = nn.Parameter(torch.empty(channels, num_blocks * channels, 1, 1))
        nn.init.kaiming_normal_(self.out_weight)
        self.out_bn = nn.BatchNorm2d(channels)
        self.channels = self.out_channels = channels
        self.reduction = reduction
        self.op_index = {op: i for i, op in enumerate(ops)}
        self.blocks: list[tuple[int, int, str, str, str]] = [(0, 1, ops[0], ops[0], "add")] * num_blocks
        self.weights: Sequence[torch.Tensor] | None = None  # one (inputs x ops) tensor per block

    def select(self, space: NASNetSpace, decisions: Sequence[int]) -> None:
        self.blocks = space.cell(decisions, "reduce" if self.reduction else "normal")

    def weigh(self, mixed: Mapping[str, tuple] | None) -> None:
        self.weights, self.active = (None, None) if mixed is None else mixed["reduce" if self.reduction else "normal"]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        if self.weights is not None:
            for b, (w, active) in enumerate(zip(self.weights, self.active, strict=True)):
                states.append(sum(mixture(self.ops[b][0][i], w[i], active[i], states[i]) for i in range(b + 2)))
            return self.out_bn(F.conv2d(F.relu(torch.cat(states[2:], 1)), self.out_weight))
        for b, (i1, i2, op1, op2, comb) in enumerate(self.blocks):
            h1 = self.ops[b][0][i1][self.op_index[op1]](states[i1])
            h2 = self.ops[b][1][i2][self.op_index[op2]](states[i2])
            states.append(h1 + h2 if comb == "add" else self.merges[b](torch.cat([h1, h2], 1)))
        used = {i for i1, i2, *_ in self.blocks for i in (i1, i2)}
        loose = [b for b in range(len(self.blocks)) if 2 + b not in used]
        c = self.channels
        weight = self.out_weight.view(c, len(self.blocks), c, 1, 1)[:, loose].reshape(c, len(loose) * c, 1, 1)
        return self.out_bn(F.conv2d(F.relu(torch.cat([states[2 + b] for b in loose], 1)), weight))


class Supernet(nn.Module):
    """The child-network skeleton of ``space`` (:mod:`rlnas.networks`) with super cells."""

    def __init__(self, space: SearchSpace, in_channels: int, num_classes: int, channels: int = 8,
                 cells_per_stage: int = 1):
        super().__init__()
        self.space = space
        if isinstance(space, NB201Space):
            self.net = NB201Network(lambda c: NB201SuperCell(space.ops, c), in_channels, num_classes,
                                    channels, cells_per_stage)
        elif isinstance(space, NASNetSpace):
            def cell(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> nn.Module:
                return NASNetSuperCell(space.num_blocks, space.ops, c_pp, c_p, c, reduction, reduction_prev)

            self.net = NASNetNetwork(cell, in_channels, num_classes, channels, cells_per_stage)
        else:
            raise TypeError(f"no supernet for search space {type(space).__name__}")
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.track_running_stats = False
                module.running_mean = module.running_var = module.num_batches_tracked = None
        # Found once: select() runs before every training step and every score.
        self._cells = [m for m in self.modules() if isinstance(m, NB201SuperCell | NASNetSuperCell)]
        n_ops = len(space.ops)
        self._shapes = ({"cell": (len(NB201_EDGES), n_ops)} if isinstance(space, NB201Space) else
                        {cell: (sum(space.block_inputs), n_ops) for cell in ("normal", "reduce")})

    def select(self, decisions: Sequence[int]) -> None:
        """Route the next forward passes through architecture ``decisions``."""
        decisions = self.space.validate(decisions)
        for cell in self._cells:
            cell.weigh(None)
            cell.select(self.space, decisions)

    def mixture_shapes(self) -> dict[str, tuple[int, int]]:
        """The architecture weights :meth:`weigh` takes, by name: NB201's cell has one row per
        edge; a NASNet cell (normal and reduce) one per (block, input) pair, block by block."""
        return dict(self._shapes)

    def weigh(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Route the next forward passes through every op, each edge the mixture of its ops
        under ``weights`` (shapes as :meth:`mixture_shapes`); :meth:`select` goes back to one
        path. Which ops carry weight is read once here, for every cell that shares them."""
        shapes = {k: tuple(v.shape) for k, v in weights.items()}
        if shapes != self._shapes:
            raise ValueError(f"supernet.weigh needs weights {self._shapes}, got {shapes}")
        mixed = {}
        for name, w in weights.items():
            active = _nonzero(w)
            if isinstance(self.space, NASNetSpace):  # rows block by block
                sizes = self.space.block_inputs
                starts = [sum(sizes[:b]) for b in range(len(sizes))]
                mixed[name] = (w.split(sizes), [active[a:a + n] for a, n in zip(starts, sizes, strict=True)])
            else:
                mixed[name] = (w, active)
        for cell in self._cells:
            cell.weigh(mixed)

    @torch.no_grad()
    def score(self, decisions: Sequence[int], x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Accuracy and mean cross-entropy of path ``decisions`` on ``(x, y)``, in batches of
        512, weights as they are; NaN if the logits are not finite."""
        self.select(decisions)
        self.eval()
        correct, loss = 0, 0.0
        for xb, yb in zip(x.split(512), y.split(512), strict=True):
            logits = self(xb)
            if not torch.isfinite(logits).all():
                return math.nan, math.nan
            correct += int((logits.argmax(1) == yb).sum())
            loss += F.cross_entropy(logits, yb, reduction="sum").item()
        return correct / len(y), loss / len(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def check_settings(mode: str, warmup_epochs: int, train_steps: int | None, batch_size: int, lr: float,
                   channels: int, cells_per_stage: int) -> int:
    """Refuse impossible training settings with a message naming them; return
    ``train_steps`` with its mode's default (5 for ``enas``, 0 for ``oneshot``) filled in."""
    if mode not in MODES:
        raise ValueError(f"supernet mode must be one of {', '.join(MODES)}, got {mode!r}")
    if train_steps is None:
        train_steps = 5 if mode == "enas" else 0
    if mode == "oneshot" and (train_steps != 0 or warmup_epochs < 1):
        raise ValueError("supernet mode=oneshot trains only before the search: it needs warmup_epochs >= 1 "
                         f"and train_steps=0 (or null), got warmup_epochs={warmup_epochs}, train_steps={train_steps}")
    if mode == "enas" and train_steps < 1:
        raise ValueError(f"supernet mode=enas trains each evaluated architecture: train_steps must be >= 1, "
                         f"got {train_steps}")
    if warmup_epochs < 0 or batch_size < 1 or lr <= 0 or channels < 1 or cells_per_stage < 0:
        raise ValueError("supernet needs warmup_epochs >= 0, batch_size >= 1, lr > 0, channels >= 1, "
                         f"cells_per_stage >= 0; got warmup_epochs={warmup_epochs}, batch_size={batch_size}, "
                         f"lr={lr}, channels={channels}, cells_per_stage={cells_per_stage}")
    return train_steps


class SupernetTrainer:
    """A supernet with its optimizer, data stream and weight version: what an evaluator
    worker owns. :meth:`evaluate` is the whole protocol; :meth:`state_dict` is what a
    checkpoint holds, so a restarted worker continues with the same weights."""

    def __init__(self, space: SearchSpace, dataset: str = "digits", mode: str = "enas",
                 warmup_epochs: int = 0, train_steps: int | None = None, channels: int = 8,
                 cells_per_stage: int = 1, batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 3e-4, grad_clip: float = 5.0, valid_size: int | None = None,
                 seed: int = 0, device: str = "cpu", data_root: str | None = None, download: bool = False):
        train_steps = check_settings(mode, warmup_epochs, train_steps, batch_size, lr, channels, cells_per_stage)
        self.space, self.mode, self.device = space, mode, device
        self.warmup_epochs, self.train_steps = warmup_epochs, train_steps
        self.batch_size, self.grad_clip, self.seed = batch_size, grad_clip, seed
        data = load_dataset(dataset, data_root, download)
        if valid_size is not None and not 1 <= valid_size <= len(data.valid.y):
            raise ValueError(f"valid_size must be in 1..{len(data.valid.y)} (the {dataset} validation split), "
                             f"got {valid_size}")
        self.train_x, self.train_y = data.train.x.to(device), data.train.y.to(device)
        self.valid_x, self.valid_y = (t[:valid_size].to(device) for t in (data.valid.x, data.valid.y))
        torch.manual_seed(seed)
        self.model = Supernet(space, data.input_shape[0], data.num_classes, channels, cells_per_stage).to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum, nesterov=True,
                                         weight_decay=weight_decay)
        self._generator = torch.Generator().manual_seed(seed)
        self._order = torch.randperm(len(self.train_y), generator=self._generator)
        self._cursor = 0
        self.version = 0  # optimizer steps taken so far
        self.warmed_up = warmup_epochs == 0

    # -- training -----------------------------------------------------------------------
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cursor + self.batch_size > len(self._order):
            self._order = torch.randperm(len(self.train_y), generator=self._generator)
            self._cursor = 0
        idx = self._order[self._cursor: self._cursor + self.batch_size].to(self.device)
        self._cursor += self.batch_size
        return self.train_x[idx], self.train_y[idx]

    def train_step(self, decisions: Sequence[int]) -> float:
        """One SGD step on the path ``decisions``. A non-finite loss is returned without a
        step, so one diverging architecture cannot poison the shared weights."""
        self.model.select(decisions)
        self.model.train()
        x, y = self._next_batch()
        with torch.enable_grad():
            loss = F.cross_entropy(self.model(x), y)
            if not torch.isfinite(loss):
                return loss.item()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
        self.version += 1
        return loss.item()

    def warm_up(self) -> None:
        """SPOS warm-up: one uniformly sampled path per minibatch for ``warmup_epochs``.
        Seeded by ``seed`` alone, so a warm-up cut short restarts to the same weights."""
        if self.warmed_up:
            return
        rng = np.random.default_rng(self.seed)
        for _ in range(self.warmup_epochs * (len(self.train_y) // self.batch_size)):
            self.train_step(self.space.sample(rng))
        self.warmed_up = True

    # -- scoring ------------------------------------------------------------------------
    def score(self, decisions: Sequence[int]) -> tuple[float, float]:
        """Accuracy and mean cross-entropy of path ``decisions`` on the fixed validation
        subset, shared weights as they are; NaN if the logits are not finite."""
        return self.model.score(decisions, self.valid_x, self.valid_y)

    def evaluate(self, arch: str) -> Evaluation:
        """Train (in ``enas`` mode) and score one architecture. A diverging loss or
        non-finite logits give a failed evaluation (score 0; behind the store, the lowest
        seen) with the reason in ``metrics["failed"]``."""
        start = time.perf_counter()
        decisions = self.space.from_string(arch)
        self.warm_up()
        for _ in range(self.train_steps):
            loss = self.train_step(decisions)
            if not math.isfinite(loss):
                return self._failed(arch, f"training loss is {loss} at weight version {self.version}", start)
        accuracy, loss = self.score(decisions)
        if not math.isfinite(accuracy):
            return self._failed(arch, f"non-finite logits at weight version {self.version}", start)
        return Evaluation(arch, accuracy, {"supernet_acc": accuracy, "supernet_loss": loss,
                                           "weight_version": self.version}, cost=time.perf_counter() - start)

    def _failed(self, arch: str, reason: str, start: float) -> Evaluation:
        return Evaluation(arch, 0.0, {"failed": reason, "weight_version": self.version},
                          cost=time.perf_counter() - start)

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self._generator.get_state(), "order": self._order, "cursor": self._cursor,
                "version": self.version, "warmed_up": self.warmed_up}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # torch's optimizer keeps the given momentum tensors, not copies: copy first, so
        # two trainers never share state through an in-process handover.
        state = copy.deepcopy(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._generator.set_state(state["generator"])
        self._order, self._cursor = state["order"], state["cursor"]
        self.version, self.warmed_up = state["version"], state["warmed_up"]
