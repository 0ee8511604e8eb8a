"""Weight-sharing supernets (ENAS, Pham et al. 2018; SPOS, Guo et al. 2020).

Every op at every position owns its weights once. ``select(decisions)`` runs one path, so
architectures sharing an op at a position share its tensors; ``weigh(weights)`` runs every
op scaled by its weight (DARTS's mixed op). A model space's supernet is its own module:
its choices hold every candidate, its layers the largest weights, sliced per path.
BatchNorm uses the batch's statistics (a shared layer's running averages would mix every
path), as NAS-Bench-201's and ENAS's code do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from rlnas.networks.cells import NASNetNetwork, NB201Cell, NB201Network
from rlnas.networks.ops import NASNET_OP_BUILDERS, NB201_OP_BUILDERS, FactorizedReduce, ReLUConvBN
from rlnas.nn.space import Blueprint, ModelSpace
from rlnas.spaces import NB201_EDGES, NASNetSpace, NB201Space, SearchSpace, loose_ends


def mixture(ops: Sequence[nn.Module], weights: torch.Tensor, active: Sequence[int], x: torch.Tensor) -> torch.Tensor:
    """sum_k weights[k] * ops[k](x) over the ops whose weight is not exactly zero: a sparse
    relaxation gives the others no gradient either, and a straight-through one-hot (GDAS)
    runs its one path, its gradient reaching every logit through that path's weight."""
    return sum(weights[k] * ops[k](x) for k in active)


def _nonzero(weights: torch.Tensor) -> list[list[int]]:
    return [[k for k, nz in enumerate(row) if nz] for row in (weights != 0).tolist()]


class NB201SuperCell(NB201Cell):
    """Every NB201 op on every edge: ``choice[e]`` runs one, ``weights`` mix them all."""

    def __init__(self, ops: Sequence[str], channels: int):
        nn.Module.__init__(self)
        self.edges = nn.ModuleList(nn.ModuleList(NB201_OP_BUILDERS[op](channels, 1) for op in ops) for _ in NB201_EDGES)
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
    """Every op for every (block, operand, input) of a NASNet cell. As in ENAS, a 1x1 conv
    sliced to the loose ends keeps the output at ``channels``; with ``weights`` it is DARTS's
    cell, each block the mixed ops of every earlier state."""

    def __init__(self, num_blocks: int, ops: Sequence[str], c_pp: int, c_p: int, channels: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, channels) if reduction_prev else ReLUConvBN(c_pp, channels, 1)
        self.pre1 = ReLUConvBN(c_p, channels, 1)
        # ops[block][operand][input][op]
        self.ops = nn.ModuleList(nn.ModuleList(nn.ModuleList(
            nn.ModuleList(NASNET_OP_BUILDERS[op](channels, 2 if reduction and inp < 2 else 1) for op in ops)
            for inp in range(block + 2)) for _operand in range(2)) for block in range(num_blocks))
        self.merges = nn.ModuleList(ReLUConvBN(2 * channels, channels, 1) for _ in range(num_blocks))
        self.out_weight = nn.Parameter(torch.empty(channels, num_blocks * channels, 1, 1))
        nn.init.kaiming_normal_(self.out_weight)
        self.out_bn = nn.BatchNorm2d(channels)
        self.channels, self.out_channels, self.reduction = channels, channels, reduction
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
        loose = [i - 2 for i in loose_ends(self.blocks)]
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
        elif isinstance(space, ModelSpace):  # the user's model: its choices hold the shared weights
            self.blueprint = Blueprint(space.factory, space.network_kwargs((in_channels,), num_classes),
                                       record_seed=None)
            self.net = self.blueprint.model
        else:
            raise TypeError(f"no supernet for search space {type(space).__name__}")
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.track_running_stats = False
                module.running_mean = module.running_var = module.num_batches_tracked = None
        # Found once: select() runs before every training step and every score.
        self._cells = [m for m in self.modules() if isinstance(m, NB201SuperCell | NASNetSuperCell)]
        if isinstance(space, ModelSpace):  # a row per decision (labels hold dots: keys by index)
            self._shapes = {f"d{i}": (1, len(d.options)) for i, d in enumerate(space.decisions)}
        elif isinstance(space, NB201Space):
            self._shapes = {"cell": (len(NB201_EDGES), len(space.ops))}
        else:
            self._shapes = {cell: (sum(space.block_inputs), len(space.ops)) for cell in ("normal", "reduce")}

    def select(self, decisions: Sequence[int]) -> None:
        """Route the next forward passes through architecture ``decisions``."""
        decisions = self.space.validate(decisions)
        if isinstance(self.space, ModelSpace):
            self.blueprint.activate(self.space.to_arch(decisions))
        for cell in self._cells:
            cell.weigh(None)
            cell.select(self.space, decisions)

    def mixture_shapes(self) -> dict[str, tuple[int, int]]:
        """The shapes of the weights :meth:`weigh` takes: a row per edge, or per (block, input)."""
        return dict(self._shapes)

    def weigh(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Run every op, each edge mixed under ``weights``; :meth:`select` goes back to one path."""
        shapes = {k: tuple(v.shape) for k, v in weights.items()}
        if shapes != self._shapes:
            raise ValueError(f"supernet.weigh needs weights {self._shapes}, got {shapes}")
        if isinstance(self.space, ModelSpace):
            self.blueprint.weigh([weights[k][0] for k in self._shapes])
            return
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
        """Accuracy and cross-entropy of path ``decisions`` on ``(x, y)`` (NaN if not finite)."""
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
