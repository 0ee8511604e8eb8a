"""What a network measures: size, multiply-accumulates, latency, BatchNorm statistics."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Set every BatchNorm's running statistics to their exact average over ``x``, in order
    (Guo et al. 2020): after a short recipe the exponential averages still describe the
    early weights. A short last batch is left out where a full one exists."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    batches = torch.arange(len(x), device=x.device).split(batch_size)
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches = batches[:-1]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    for idx in batches:
        model(x[idx])
    model.train(was_training)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of convolutions and linear layers: the papers' "FLOPs"."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += out.numel() // out.shape[0] * kernel

    def linear_hook(module: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() // out.shape[0] * module.in_features

    handles = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


@torch.no_grad()
def measure_latency(model: nn.Module, input_shape: Sequence[int], batch: int, device: str = "cpu",
                    warmup: int = 5, repeats: int = 30) -> tuple[float, float]:
    """Median forward time (ms) of a batch of zeros, and its interquartile range."""
    was_training = model.training
    model.eval().to(device)
    x = torch.zeros(batch, *input_shape, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = []
    try:
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(x)
            sync()
            if i >= warmup:
                times.append(1000 * (time.perf_counter() - start))
    finally:
        model.train(was_training)
    q1, median, q3 = statistics.quantiles(times, n=4)
    return median, q3 - q1
