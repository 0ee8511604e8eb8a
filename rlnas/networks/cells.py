"""Child networks: a cell architecture compiled onto its benchmark's own skeleton."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from rlnas.networks.ops import NASNET_OP_BUILDERS, NB201_OP_BUILDERS, FactorizedReduce, ReLUConvBN
from rlnas.spaces import NB201_EDGES, NASNetSpace, NB201Space, SearchSpace, loose_ends, make_space


# -- NAS-Bench-201 ------------------------------------------------------------------------
class NB201Cell(nn.Module):
    """Node j sums op(i -> j)(node i) over i < j; node 3 is the output."""

    def __init__(self, ops: Sequence[str], channels: int):
        super().__init__()
        self.edges = nn.ModuleList(NB201_OP_BUILDERS[op](channels, 1) for op in ops)

    def edge(self, e: int) -> nn.Module:
        return self.edges[e]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for dst in range(1, 4):
            nodes.append(sum(self.edge(e)(nodes[src]) for e, (to, src) in enumerate(NB201_EDGES) if to == dst))
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    """NB201's fixed reduction block between stages: stride-2 residual block."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class NB201Network(nn.Module):
    """NB201's skeleton: stem, three stages of ``cell(channels)`` with reductions between, head."""

    def __init__(self, cell: Callable[[int], nn.Module], in_channels: int, num_classes: int,
                 channels: int = 16, cells_per_stage: int = 5):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)]
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            layers += [cell(c) for _ in range(cells_per_stage)]
        layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# -- NASNet / ENAS ------------------------------------------------------------------------
class NASNetCell(nn.Module):
    """One normal or reduction cell; it outputs the blocks nothing consumed, concatenated."""

    def __init__(self, blocks: Sequence[tuple[int, int, str, str, str]], c_pp: int, c_p: int,
                 channels: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, channels) if reduction_prev else ReLUConvBN(c_pp, channels, 1)
        self.pre1 = ReLUConvBN(c_p, channels, 1)
        self.blocks = [(i1, i2, comb) for i1, i2, _, _, comb in blocks]
        self.ops, self.merges = nn.ModuleList(), nn.ModuleDict()
        for b, (i1, i2, op1, op2, comb) in enumerate(blocks):
            for inp, op in ((i1, op1), (i2, op2)):
                stride = 2 if reduction and inp < 2 else 1
                self.ops.append(NASNET_OP_BUILDERS[op](channels, stride))
            if comb == "concat":
                self.merges[str(b)] = ReLUConvBN(2 * channels, channels, 1)
        self.outputs = loose_ends(blocks)
        self.out_channels = len(self.outputs) * channels

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for b, (i1, i2, comb) in enumerate(self.blocks):
            h1, h2 = self.ops[2 * b](states[i1]), self.ops[2 * b + 1](states[i2])
            states.append(h1 + h2 if comb == "add" else self.merges[str(b)](torch.cat([h1, h2], 1)))
        return torch.cat([states[i] for i in self.outputs], dim=1)


class NASNetNetwork(nn.Module):
    """NASNet's skeleton: stem, three stacks of ``cell(...)`` with reduction cells between, head."""

    def __init__(self, cell: Callable[..., nn.Module], in_channels: int, num_classes: int, channels: int = 16,
                 cells_per_stage: int = 2, stem_multiplier: int = 3):
        super().__init__()
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        c_pp, c_p, c, reduction_prev = c_stem, c_stem, channels, False
        self.cells = nn.ModuleList()
        for stage in range(3):
            kinds = ([True] if stage > 0 else []) + [False] * cells_per_stage
            for reduction in kinds:
                if reduction:
                    c *= 2
                module = cell(c_pp, c_p, c, reduction, reduction_prev)
                self.cells.append(module)
                c_pp, c_p, reduction_prev = c_p, module.out_channels, reduction
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.head(s1))


def build_network(space: SearchSpace | Mapping[str, Any], arch: str | Sequence[int], in_channels: int = 3,
                  num_classes: int = 10, channels: int = 16, cells_per_stage: int | None = None,
                  state_dict: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """Compile an architecture of ``space`` (or its settings) into a module, trained with ``state_dict``."""
    if channels < 1 or (cells_per_stage is not None and cells_per_stage < 0):
        raise ValueError(f"channels must be >= 1 and cells_per_stage >= 0; got {channels=}, {cells_per_stage=}")
    if isinstance(space, Mapping):
        space = make_space(**space)
    decisions = space.from_string(arch) if isinstance(arch, str) else space.validate(arch)
    if isinstance(space, NB201Space):
        ops = [space.ops[d] for d in decisions]
        model: nn.Module = NB201Network(lambda c: NB201Cell(ops, c), in_channels, num_classes, channels,
                                        5 if cells_per_stage is None else cells_per_stage)
    elif isinstance(space, NASNetSpace):
        normal, reduce = space.cell(decisions, "normal"), space.cell(decisions, "reduce")

        def cell(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> nn.Module:
            return NASNetCell(reduce if reduction else normal, c_pp, c_p, c, reduction, reduction_prev)

        per_stage = 2 if cells_per_stage is None else cells_per_stage
        model = NASNetNetwork(cell, in_channels, num_classes, channels, per_stage)
    else:
        raise TypeError(f"no child network for search space {type(space).__name__}")
    if state_dict is not None:
        model.load_state_dict(state_dict)
        return model.eval()
    return model
