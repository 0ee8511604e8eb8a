"""Candidate ops as builders ``(channels, stride) -> Module``, as DARTS and NB201 define them."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1):
        padding = dilation * (kernel - 1) // 2
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out))


class DilConv(nn.Sequential):
    """Depthwise-separable convolution: depthwise k x k (dilated), pointwise 1 x 1, BN."""

    def __init__(self, c: int, kernel: int, stride: int, dilation: int = 1):
        padding = dilation * (kernel - 1) // 2
        super().__init__(nn.ReLU(), nn.Conv2d(c, c, kernel, stride, padding, dilation=dilation, groups=c, bias=False),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


class SepConv(nn.Sequential):
    """Two stacked separable convolutions, as in NASNet; only the first strides."""

    def __init__(self, c: int, kernel: int, stride: int):
        super().__init__(DilConv(c, kernel, stride), DilConv(c, kernel, 1))


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing half the pixels: two offset stride-2 1x1 convs."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


class Zero(nn.Module):
    """NB201's ``none``: the edge carries nothing (zeros of the output's shape)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def _identity(c: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c)


OpBuilder = Callable[[int, int], nn.Module]

PARAMETER_FREE = frozenset({"none", "skip_connect", "identity", "avg_pool_3x3", "max_pool_3x3"})  # a collapse favours


def op_class(name: str) -> int:
    """0: carries nothing (``none``); 1: no weights (identity, pooling); 2: a convolution."""
    return 0 if name == "none" else 1 if name in PARAMETER_FREE else 2


NASNET_OP_BUILDERS: dict[str, OpBuilder] = {
    "identity": _identity,
    "sep_conv_3x3": lambda c, s: SepConv(c, 3, s),
    "sep_conv_5x5": lambda c, s: SepConv(c, 5, s),
    "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, s, 1, count_include_pad=False),
    "max_pool_3x3": lambda c, s: nn.MaxPool2d(3, s, 1),
    "conv_1x1": lambda c, s: ReLUConvBN(c, c, 1, s),
    "conv_3x3": lambda c, s: ReLUConvBN(c, c, 3, s),
    "dil_conv_3x3": lambda c, s: DilConv(c, 3, s, dilation=2),
    "dil_conv_5x5": lambda c, s: DilConv(c, 5, s, dilation=2),
}

NB201_OP_BUILDERS: dict[str, OpBuilder] = {
    "none": lambda c, s: Zero(s),
    "skip_connect": _identity,
    "nor_conv_1x1": lambda c, s: ReLUConvBN(c, c, 1, s),
    "nor_conv_3x3": lambda c, s: ReLUConvBN(c, c, 3, s),
    "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, s, 1, count_include_pad=False),
}

