"""The choices a model space is written with, as NNI's model-space API wrote them.

A choice is made once per label: every object with one label is one decision. Each holds
the value it takes now (``active``); a space module runs that path (single-path weight
sharing, as SPOS and ENAS do), and :func:`rlnas.nn.freeze` turns it into a plain network.
Given a ``mixture`` (weights over its options, DARTS's relaxation) a choice runs them all,
weighed: candidates and inputs summed, widths and kernels as soft masks (FBNetV2).

While :func:`record` builds a model, every choice is noted in the order it is made, with
the :class:`Repeat` blocks it sits in: a choice used only in blocks a shorter depth
switches off is not a decision of that architecture.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

Scalar = int | float | str | bool
Mixture = tuple[torch.Tensor, list[int]]  # weights over a choice's options, and those not zero
REDUCTIONS = ("sum", "mean", "concat", "none")


class Expr:
    """A value that depends on choices: a :class:`ValueChoice`, or arithmetic on them."""

    def leaves(self) -> list[ValueChoice]:
        raise NotImplementedError

    @property
    def value(self) -> Any:
        """What it is on the active path."""
        raise NotImplementedError

    def possible(self) -> list[Any]:
        """Every value it can take, one per combination of its leaves' values."""
        leaves = list(dict.fromkeys(self.leaves()))
        seen = []
        for combo in itertools.product(*(leaf.values for leaf in leaves)):
            with set_active(leaves, combo):
                seen.append(self.value)
        return seen

    def map(self, fn: Callable[[Any], Any]) -> Derived:
        """``fn`` of this value: ``choice([16, 32]).map(lambda c: c * 4)``."""
        return Derived(fn, (self,))

    def _op(self, fn: Callable, other: Any, swap: bool = False) -> Derived:
        return Derived(fn, (other, self) if swap else (self, other))

    def __add__(self, other): return self._op(operator.add, other)
    def __radd__(self, other): return self._op(operator.add, other, swap=True)
    def __sub__(self, other): return self._op(operator.sub, other)
    def __rsub__(self, other): return self._op(operator.sub, other, swap=True)
    def __mul__(self, other): return self._op(operator.mul, other)
    def __rmul__(self, other): return self._op(operator.mul, other, swap=True)
    def __floordiv__(self, other): return self._op(operator.floordiv, other)
    def __truediv__(self, other): return self._op(operator.truediv, other)


@contextlib.contextmanager
def set_active(leaves: Sequence[ValueChoice], values: Sequence[Any]) -> Iterator[None]:
    """The ``leaves`` take ``values`` inside the block, and what they had after it."""
    before = [leaf.active for leaf in leaves]
    for leaf, v in zip(leaves, values, strict=True):
        leaf.active = v
    try:
        yield
    finally:
        for leaf, v in zip(leaves, before, strict=True):
            leaf.active = v


def resolve(value: Any) -> Any:
    """``value`` on the active path: an :class:`Expr` evaluated, containers entered."""
    if isinstance(value, Expr):
        return value.value
    if isinstance(value, list | tuple):
        return type(value)(resolve(v) for v in value)
    return value


def leaves_of(value: Any) -> list[ValueChoice]:
    if isinstance(value, Expr):
        return value.leaves()
    if isinstance(value, list | tuple):
        return [leaf for v in value for leaf in leaves_of(v)]
    return []


class Derived(Expr):
    """``fn`` of values some of which are choices."""

    def __init__(self, fn: Callable[..., Any], args: Sequence[Any]):
        self.fn, self.args = fn, tuple(args)

    def leaves(self) -> list[ValueChoice]:
        return leaves_of(list(self.args))

    @property
    def value(self) -> Any:
        return self.fn(*(resolve(a) for a in self.args))


class ValueChoice(Expr):
    """One of ``values`` (numbers, strings or booleans): a width, a kernel size, a rate.

    Give it as an argument of :mod:`rlnas.nn`'s layers (or :class:`Valued` for a layer of
    your own); one object used in several layers, or several with one ``label``, is one
    decision.
    """

    def __init__(self, values: Sequence[Scalar], label: str | None = None):
        values = list(values)
        if not values:
            raise ValueError("ValueChoice needs at least one value; got an empty list")
        bad = [v for v in values if not isinstance(v, Scalar)]
        if bad:
            raise ValueError(f"ValueChoice values must be numbers, strings or booleans (they are written in the "
                             f"architecture's JSON); got {bad[0]!r}")
        if len(set(map(repr, values))) < len(values):
            raise ValueError(f"ValueChoice values must be distinct; got {values}")
        self.values, self.label, self.active = values, _checked_label(label), values[0]
        self.mixture: Mixture | None = None  # weights over the values: every one runs, weighed
        _note(self)

    def leaves(self) -> list[ValueChoice]:
        return [self]

    @property
    def value(self) -> Any:
        return self.active

    def __repr__(self) -> str:
        return f"ValueChoice({self.values}, label={self.label!r})"


choice = ValueChoice


class Mutable(nn.Module):
    """A module that is one of several: what :func:`rlnas.nn.freeze` replaces."""

    label: str | None
    mixture: Mixture | None = None  # weights over the options: all of them run, weighed

    def options(self) -> list[Any]:
        """The choices of this decision, as the architecture's JSON writes them."""
        raise NotImplementedError


class LayerChoice(Mutable):
    """One of ``candidates`` (a list, or a dict of name to module) runs.

    ``classes`` (optional, one per candidate) tells the planner which candidates behave
    alike; without it a candidate's class is whether it has parameters.
    """

    def __init__(self, candidates: Sequence[nn.Module] | Mapping[str, nn.Module], label: str | None = None,
                 classes: Sequence[int] | None = None):
        super().__init__()
        named = dict(candidates) if isinstance(candidates, Mapping) else dict(enumerate(candidates))
        if not named:
            raise ValueError("LayerChoice needs at least one candidate; got none")
        for key, module in named.items():
            if not isinstance(module, nn.Module):
                raise ValueError(f"LayerChoice candidate {key!r} is {type(module).__name__}, not a torch.nn.Module")
        self.names = list(named)
        for key, module in named.items():
            self.add_module(str(key), module)
        if classes is not None and len(classes) != len(self.names):
            raise ValueError(f"LayerChoice classes has {len(classes)} entries for {len(self.names)} candidates")
        self.classes = list(classes) if classes is not None else [
            int(any(True for _ in m.parameters())) + 1 for m in named.values()]
        self.label, self.active = _checked_label(label), self.names[0]
        _note(self)

    def options(self) -> list[Any]:
        return list(self.names)

    def chosen(self) -> nn.Module:
        return getattr(self, str(self.active))

    def forward(self, *args, **kwargs):
        if self.mixture is None:
            return self.chosen()(*args, **kwargs)
        weights, active = self.mixture
        return sum(weights[i] * getattr(self, str(self.names[i]))(*args, **kwargs) for i in active)


class InputChoice(Mutable):
    """``n_chosen`` of the ``n_candidates`` tensors given to ``forward``, reduced.

    ``forward(tensors)`` takes a list of ``n_candidates`` tensors and returns the chosen
    ones summed, averaged, concatenated along dimension 1, or as a list (``"none"``).
    """

    def __init__(self, n_candidates: int, n_chosen: int = 1, reduction: str = "sum", label: str | None = None):
        super().__init__()
        if not isinstance(n_candidates, int) or n_candidates < 1:
            raise ValueError(f"InputChoice n_candidates must be an integer >= 1; got {n_candidates!r}")
        if not isinstance(n_chosen, int) or not 1 <= n_chosen <= n_candidates:
            raise ValueError(f"InputChoice n_chosen={n_chosen!r} must be an integer in [1, n_candidates = "
                             f"{n_candidates}]")
        if reduction not in REDUCTIONS:
            raise ValueError(f"InputChoice reduction={reduction!r}; allowed: {', '.join(REDUCTIONS)}")
        self.n_candidates, self.n_chosen, self.reduction = n_candidates, n_chosen, reduction
        self.label, self.active = _checked_label(label), list(range(n_chosen))
        _note(self)

    def options(self) -> list[Any]:
        return list(range(self.n_candidates))

    def forward(self, tensors: Sequence[torch.Tensor]):
        if self.mixture is None:
            return reduce_inputs(tensors, self.active, self.reduction)
        if self.reduction not in ("sum", "mean"):
            raise ValueError(f"InputChoice {self.label!r}: a relaxation weighs its inputs, which reduction="
                             f"{self.reduction!r} cannot; DARTS, GDAS and SNAS need sum or mean")
        weights, active = self.mixture
        mixed = sum(weights[i] * tensors[i] for i in active)
        return mixed * self.n_chosen if self.reduction == "sum" else mixed


def reduce_inputs(tensors: Sequence[torch.Tensor], chosen: Sequence[int], reduction: str):
    picked = [tensors[i] for i in chosen]
    if reduction == "none":
        return picked
    if reduction == "concat":
        return torch.cat(picked, 1)
    total = picked[0] if len(picked) == 1 else torch.stack(picked).sum(0)
    return total / len(picked) if reduction == "mean" else total


class ChosenInputs(nn.Module):
    """What an :class:`InputChoice` becomes in a fixed network: fixed indices, reduced."""

    def __init__(self, chosen: Sequence[int], reduction: str):
        super().__init__()
        self.chosen, self.reduction = list(chosen), reduction

    def forward(self, tensors: Sequence[torch.Tensor]):
        return reduce_inputs(tensors, self.chosen, self.reduction)


class Repeat(Mutable):
    """``block_factory(i)`` for ``i`` below a chosen depth, applied in sequence.

    ``depth`` is ``(low, high)`` (every depth between), a list of depths, or a
    :class:`ValueChoice` of them. Each block's choices are their own decisions unless a
    label ties them; those of blocks beyond the chosen depth are not decisions at all.
    """

    def __init__(self, block_factory: Callable[[int], nn.Module], depth: tuple[int, int] | Sequence[int] | ValueChoice,
                 label: str | None = None):
        super().__init__()
        if isinstance(depth, ValueChoice):
            self.depth = depth
        else:
            values = list(range(depth[0], depth[1] + 1)) if isinstance(depth, tuple) and len(depth) == 2 else \
                list(depth)
            self.depth = ValueChoice(values, label)
            self.depth.owner = self
        if any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in self.depth.values):
            raise ValueError(f"Repeat depth must be whole numbers >= 1; got {self.depth.values}")
        for i in range(max(self.depth.values)):
            with _inside(self, i):
                block = block_factory(i)
            if not isinstance(block, nn.Module):
                raise ValueError(f"Repeat's block_factory({i}) returned {type(block).__name__}, not a torch.nn.Module")
            self.add_module(str(i), block)

    @property
    def label(self) -> str | None:
        return self.depth.label

    def options(self) -> list[Any]:
        return list(self.depth.values)

    def forward(self, x):
        blocks, mixture = list(self.children()), self.depth.mixture
        if mixture is None:
            for block in blocks[:self.depth.active]:
                x = block(x)
            return x
        weights, active = mixture
        outputs = []  # after each block; depth d's is outputs[d - 1]
        for block in blocks[:max(self.depth.values[i] for i in active)]:
            x = block(x)
            outputs.append(x)
        return sum(weights[i] * outputs[self.depth.values[i] - 1] for i in active)


def _checked_label(label: str | None) -> str | None:
    if label is not None and (not isinstance(label, str) or not label):
        raise ValueError(f"a choice's label must be a non-empty string; got {label!r}")
    return label


# -- recording a model space ---------------------------------------------------------------
@dataclass
class Recording:
    """What a model's construction chose to make: each choice (its first sight) and each
    use, with the (repeat, block index) pairs around it."""

    seen: list[Any] = field(default_factory=list)
    uses: dict[int, list[tuple]] = field(default_factory=dict)
    where: list[tuple] = field(default_factory=list)  # the (repeat, index) pairs we are inside now


_RECORDING: ContextVar[Recording | None] = ContextVar("rlnas_nn_recording", default=None)


@contextlib.contextmanager
def recording() -> Iterator[Recording]:
    rec = Recording()
    token = _RECORDING.set(rec)
    try:
        yield rec
    finally:
        _RECORDING.reset(token)


def _note(thing: Any) -> None:
    """``thing`` (a choice) is made or used here."""
    rec = _RECORDING.get()
    if rec is None:
        return
    if id(thing) not in rec.uses:
        rec.seen.append(thing)
        rec.uses[id(thing)] = []
    rec.uses[id(thing)].append(tuple(rec.where))


def note_uses(value: Any) -> None:
    """A layer's argument: each choice in it is used here."""
    for leaf in leaves_of(value):
        _note(leaf)


@contextlib.contextmanager
def _inside(repeat: Repeat, index: int) -> Iterator[None]:
    rec = _RECORDING.get()
    if rec is None:
        yield
        return
    rec.where.append((repeat, index))
    try:
        yield
    finally:
        rec.where.pop()

