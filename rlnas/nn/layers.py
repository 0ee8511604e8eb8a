"""Layers whose arguments may be choices.

:class:`Conv2d`, :class:`Linear`, :class:`BatchNorm2d` and :class:`BatchNorm1d` hold the
weights of their largest form and run a slice of them (the first channels, the centre of
the kernel), as once-for-all networks and SPOS share weights; :class:`Dropout` reads its
rate. A layer of your own takes choices through :class:`Valued`, which keeps one copy per
combination of them. In a fixed network each becomes the plain ``torch.nn`` layer.
"""

from __future__ import annotations

import copy
import inspect
import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rlnas.nn.choices import Expr, leaves_of, note_uses, resolve, set_active


class Sliced:
    """Mixed into a ``torch.nn`` layer: built at the largest value of each argument."""

    torch_class: type[nn.Module]

    def __init__(self, *args: Any, **kwargs: Any):
        bound = inspect.signature(self.torch_class.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
        note_uses(list(arguments.values()))
        largest = {k: _largest(v) for k, v in arguments.items()}
        self.torch_class.__init__(self, **largest)
        self.arguments = arguments
        self.leaves = list(dict.fromkeys(leaves_of(list(arguments.values()))))  # found once: forward asks
        self.has_choices = bool(self.leaves)

    def active_arguments(self) -> dict[str, Any]:
        return {k: resolve(v) for k, v in self.arguments.items()}

    @property
    def mixed(self) -> bool:
        """Whether a relaxation weighs this layer's choices (every value runs, masked)."""
        return any(leaf.mixture is not None for leaf in self.leaves)

    def soft_mask(self, name: str, shape: tuple[int, ...]) -> torch.Tensor | None:
        """Argument ``name``'s values, weighed: sum_i w_i * [the first value_i channels] (or, for a
        kernel, its centre value_i x value_i), over ``shape``; None if no weights reach it."""
        leaves = list(dict.fromkeys(leaves_of(self.arguments[name])))
        if not any(leaf.mixture is not None for leaf in leaves):
            return None
        if len(leaves) > 1:
            raise ValueError(f"{type(self).__name__}.{name} depends on {len(leaves)} choices; a relaxation weighs "
                             "sizes that follow one")
        (leaf,), (weights, active) = leaves, leaves[0].mixture
        mask = torch.zeros(shape, device=weights.device)
        for i in active:
            with set_active([leaf], [leaf.values[i]]):
                size = nn.modules.utils._pair(resolve(self.arguments[name])) if len(shape) == 2 else \
                    (resolve(self.arguments[name]),)
            part = torch.zeros(shape, device=weights.device)
            part[tuple(slice((f - n) // 2, (f - n) // 2 + n) for f, n in zip(shape, size, strict=True))
                 if len(shape) == 2 else slice(0, size[0])] = 1.0  # a kernel's centre; the first channels
            mask = mask + weights[i] * part
        return mask

    def fixed(self, inherit: bool) -> nn.Module:
        """The plain layer of the active path; with ``inherit``, its weights are this one's slice."""
        layer = self.torch_class(**self.active_arguments())
        if inherit:
            with torch.no_grad():
                for name, tensor in itertools.chain(layer.named_parameters(), layer.named_buffers()):
                    source = getattr(self, name)
                    tensor.copy_(source[_slices(source.shape, tensor.shape)] if source.dim() else source)
        return layer


def _largest(value: Any) -> Any:
    if not isinstance(value, Expr):
        return value
    values = value.possible()
    return max(values) if all(isinstance(v, int | float) for v in values) else values[0]


def _slices(full: torch.Size, part: torch.Size) -> tuple[slice, ...]:
    """The first channels of dimensions 0 and 1, the centre of any further (a kernel)."""
    return tuple(slice(0, p) if d < 2 else slice((f - p) // 2, (f - p) // 2 + p)
                 for d, (f, p) in enumerate(zip(full, part, strict=True)))


def _masked(out: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``out`` with its channels (dimension 1) weighed by ``mask``."""
    return out if mask is None else out * mask.view(1, -1, *([1] * (out.dim() - 2)))


class Conv2d(Sliced, nn.Conv2d):
    """``torch.nn.Conv2d``; channels, kernel size, stride, padding, dilation and groups may be choices."""

    torch_class = nn.Conv2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_choices:
            return nn.Conv2d.forward(self, x)
        if self.mixed:  # the largest, its kernel and output channels masked by the weights
            kernel = self.soft_mask("kernel_size", tuple(self.weight.shape[2:]))
            weight = self.weight if kernel is None else self.weight * kernel
            out = F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
            return _masked(out, self.soft_mask("out_channels", (self.out_channels,)))
        a = self.active_arguments()
        kernel = nn.modules.utils._pair(a["kernel_size"])
        weight = self.weight[_slices(self.weight.shape, (a["out_channels"], a["in_channels"] // a["groups"], *kernel))]
        bias = None if self.bias is None else self.bias[:a["out_channels"]]
        return F.conv2d(x, weight, bias, a["stride"], a["padding"], a["dilation"], a["groups"])


class Linear(Sliced, nn.Linear):
    """``torch.nn.Linear``; its sizes may be choices."""

    torch_class = nn.Linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_choices:
            return nn.Linear.forward(self, x)
        if self.mixed:
            return _masked(nn.Linear.forward(self, x), self.soft_mask("out_features", (self.out_features,)))
        a = self.active_arguments()
        bias = None if self.bias is None else self.bias[:a["out_features"]]
        return F.linear(x, self.weight[:a["out_features"], :a["in_features"]], bias)


class _SlicedBatchNorm(Sliced):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_choices:
            return self.torch_class.forward(self, x)
        if self.mixed:
            return _masked(self.torch_class.forward(self, x), self.soft_mask("num_features", (self.num_features,)))
        self._check_input_dim(x)
        c = x.shape[1]
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative average, as torch's own
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or self.running_mean is None
        running = (None, None) if self.running_mean is None else (self.running_mean[:c], self.running_var[:c])
        weight, bias = (None, None) if self.weight is None else (self.weight[:c], self.bias[:c])
        return F.batch_norm(x, *running, weight, bias, use_batch, momentum, self.eps)


class BatchNorm2d(_SlicedBatchNorm, nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d``; ``num_features`` may be a choice."""

    torch_class = nn.BatchNorm2d


class BatchNorm1d(_SlicedBatchNorm, nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d``; ``num_features`` may be a choice."""

    torch_class = nn.BatchNorm1d


class Dropout(Sliced, nn.Dropout):
    """``torch.nn.Dropout``; the rate ``p`` may be a choice."""

    torch_class = nn.Dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Under a relaxation, the rate weighted most (a rate takes no gradient)."""
        p = self.arguments["p"]
        leaves = leaves_of(p)
        if len(leaves) == 1 and leaves[0].mixture is not None:
            weights, _ = leaves[0].mixture
            with set_active(leaves, [leaves[0].values[int(weights.argmax())]]):
                p = resolve(p)
        return F.dropout(x, resolve(p), self.training, self.inplace)


class Valued(nn.Module):
    """A layer of your own whose arguments are choices: ``Valued(MyBlock, width, kernel=k)``.

    Keeps one ``MyBlock`` per combination of the choices in its arguments (no weights are
    shared between them) and runs the active one; a fixed network has the one it names.
    """

    def __init__(self, layer_class: type[nn.Module], *args: Any, **kwargs: Any):
        super().__init__()
        self.layer_class, self.args, self.kwargs = layer_class, args, kwargs
        note_uses([*args, *kwargs.values()])
        self.leaves = list(dict.fromkeys(leaves_of([*args, *kwargs.values()])))
        combos = list(itertools.product(*(leaf.values for leaf in self.leaves)))
        if len(combos) > 64:
            raise ValueError(f"Valued({layer_class.__name__}) would keep {len(combos)} copies (one per combination "
                             "of its choices); at most 64")
        self.copies = nn.ModuleList()
        for combo in combos:
            with set_active(self.leaves, combo):
                self.copies.append(self._build())

    def _build(self) -> nn.Module:
        return self.layer_class(*resolve(list(self.args)), **{k: resolve(v) for k, v in self.kwargs.items()})

    def active_copy(self) -> nn.Module:
        index = 0
        for leaf in self.leaves:
            index = index * len(leaf.values) + leaf.values.index(leaf.active)
        return self.copies[index]

    def fixed(self, inherit: bool) -> nn.Module:
        return copy.deepcopy(self.active_copy()) if inherit else self._build()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        mixtures = [leaf.mixture for leaf in self.leaves]
        if all(m is None for m in mixtures):
            return self.active_copy()(*args, **kwargs)
        if len(self.leaves) > 1:
            raise ValueError(f"Valued({self.layer_class.__name__}) has {len(self.leaves)} choices; a relaxation "
                             "weighs the copies of one")
        weights, active = mixtures[0]
        return sum(weights[i] * self.copies[i](*args, **kwargs) for i in active)
