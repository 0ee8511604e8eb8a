"""A PyTorch model with choices in it, as a :class:`~rlnas.spaces.SearchSpace`.

Building the model once, under :func:`~rlnas.nn.choices.recording`, lists its decisions:
one per label, in the order the choices are made (an :class:`~rlnas.nn.InputChoice` of
``n_chosen = k`` is ``k`` of them, each pick after the one before, so its masks keep the
picks distinct). A choice's default label is its place in the model (``stages.0.op``;
``stem.out_channels`` for a layer's argument). The architecture's string is the JSON of
label to choice, over the decisions the architecture makes: the blocks a shorter
:class:`~rlnas.nn.Repeat` depth switches off make none (one legal action, 0, in the env).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from rlnas.core.settings import MISSING, OfType, setting
from rlnas.nn.choices import ChosenInputs, Expr, InputChoice, LayerChoice, Repeat, ValueChoice, leaves_of, recording
from rlnas.nn.layers import Sliced, Valued
from rlnas.spaces.base import Decisions, SearchSpace, SpaceConfig, json_mapping

PLACEHOLDERS = {"num_classes": 10, "in_channels": 3, "in_features": 16}  # to list a space's choices without data


@dataclass
class Decision:
    """One label: its kind (layer, input or value), what it may be, and where it is used.

    ``conditions``: the ways it can be in use, each a tuple of (depth decision's index,
    block index) pairs that must all hold (depth > index); empty: always in use."""

    label: str
    kind: str
    options: list[Any]
    members: list[Any] = field(repr=False)
    n_chosen: int = 1
    classes: list[int] | None = None
    conditions: list[tuple[tuple[int, int], ...]] = field(default_factory=list)


def load_factory(spec: str) -> Callable[..., nn.Module]:
    """``path/to/file.py:Name`` or ``package.module:Name``: the model class (or factory) it names."""
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ValueError(f"model space {spec!r} must be 'path/to/file.py:Name' or 'package.module:Name'")
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"model space {spec!r}: no such file {where}")
        module_name = f"rlnas_model_space_{path.stem}_{abs(hash(str(path))):x}"
        module = sys.modules.get(module_name)
        if module is None:
            loader = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[module_name] = module  # so workers and pickles find its classes by name
            loader.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise ValueError(f"model space {spec!r}: cannot import {where}: {err}") from err
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(f"model space {spec!r}: {where} has no class or function {name!r}")
    return factory


class Blueprint:
    """A model space built once: the module (every candidate in it) and its decisions."""

    def __init__(self, factory: Callable[..., nn.Module], kwargs: Mapping[str, Any], record_seed: int | None = 0):
        with torch.random.fork_rng(devices=[], enabled=record_seed is not None), recording() as rec:
            if record_seed is not None:  # building a space leaves torch's generator as it was
                torch.manual_seed(record_seed)
            model = factory(**kwargs)
        if not isinstance(model, nn.Module):
            raise ValueError(f"model space {getattr(factory, '__name__', factory)!r} built a "
                             f"{type(model).__name__}, not a torch.nn.Module")
        self.model = model
        self.decisions = _decisions(model, rec)
        if not self.decisions:
            raise ValueError(f"model space {getattr(factory, '__name__', factory)!r} has no choice: use "
                             "rlnas.nn.LayerChoice, InputChoice, ValueChoice or Repeat in it")

    def in_use(self, index: int, chosen: Mapping[int, Any]) -> bool:
        """Whether decision ``index`` is made, given the values ``chosen`` of the depths before it."""
        conditions = self.decisions[index].conditions
        return not conditions or any(all(chosen[d] > block for d, block in alt) for alt in conditions)

    def activate(self, arch: Mapping[str, Any]) -> None:
        """Set every choice to ``arch`` (a checked architecture); those not in it to their first."""
        for d in self.decisions:
            value = arch.get(d.label, [*range(d.n_chosen)] if d.kind == "input" else d.options[0])
            for member in d.members:
                member.active, member.mixture = (list(value) if d.kind == "input" else value), None

    def weigh(self, weights: Sequence[torch.Tensor]) -> None:
        """Run every option of every decision, weighed by ``weights`` (one vector per decision,
        over its options: DARTS's relaxation); :meth:`activate` goes back to one path."""
        for d, w in zip(self.decisions, weights, strict=True):
            active = torch.nonzero(w.detach()).flatten().tolist()  # once here, not in every forward
            for member in d.members:
                member.mixture = (w, active)

    def path(self, arch: Mapping[str, Any]) -> nn.Module:
        """A copy of path ``arch`` as a plain network that keeps the weights it has here."""
        copied = copy.deepcopy(self)
        copied.activate(arch)
        return freeze(copied.model, inherit=True)


def _decisions(model: nn.Module, rec) -> list[Decision]:
    paths = {}
    for path, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(module), path or "model")
    labels = _default_labels(model, rec, paths)
    by_label: dict[str, Decision] = {}
    for thing in rec.seen:
        if isinstance(thing, LayerChoice | InputChoice) and id(thing) not in paths:
            continue  # made but never put in the model: not a decision
        label = thing.label or labels[id(thing)]
        kind = "layer" if isinstance(thing, LayerChoice) else "input" if isinstance(thing, InputChoice) else "value"
        options = thing.values if isinstance(thing, ValueChoice) else thing.options()
        n_chosen = getattr(thing, "n_chosen", 1)
        found = by_label.setdefault(label, Decision(label, kind, list(options), [], n_chosen,
                                                    getattr(thing, "classes", None)))
        if (found.kind, found.options, found.n_chosen) != (kind, list(options), n_chosen):
            raise ValueError(f"label {label!r} names two different choices: {found.kind} of {found.options}"
                             f"{_chosen(found.n_chosen)} and {kind} of {list(options)}{_chosen(n_chosen)}; "
                             "one label is one decision, so their candidates must agree")
        if thing.label is None:
            thing.label = label
        found.members.append(thing)
    decisions = list(by_label.values())
    index = {d.label: i for i, d in enumerate(decisions)}
    for i, d in enumerate(decisions):
        d.conditions = _conditions(d, i, rec, index)
    return decisions


def _conditions(d: Decision, i: int, rec, index: dict[str, int]) -> list[tuple[tuple[int, int], ...]]:
    """Where decision ``i`` is used: a value where a layer takes it (else where it was made),
    anything else where it was made; one use outside every Repeat: always (no condition)."""
    found = []
    for member in d.members:
        uses = rec.uses[id(member)]
        for where in (uses[1:] or uses) if isinstance(member, ValueChoice) else uses[:1]:
            alt = tuple((index[repeat.label], block) for repeat, block in where)
            if any(j >= i for j, _ in alt):
                raise ValueError(f"choice {d.label!r} is made before the depth of the Repeat it is in")
            if not alt:
                return []
            found.append(alt)
    return found


def _chosen(n: int) -> str:
    return f" (n_chosen={n})" if n > 1 else ""


def _default_labels(model: nn.Module, rec, paths: dict[int, str]) -> dict[int, str]:
    """A choice's place in the model: a module's path, a layer argument's path and name."""
    labels: dict[int, str] = {}
    for path, module in model.named_modules():
        path = path or "model"
        if isinstance(module, Sliced | Valued):
            for name, value in _named_arguments(module).items():
                for leaf in leaves_of(value):
                    labels.setdefault(id(leaf), f"{path}.{name}")
        for name, value in vars(module).items():
            if isinstance(value, ValueChoice):
                labels.setdefault(id(value), f"{path}.{name}")
    for thing in rec.seen:
        owner = getattr(thing, "owner", None)
        if isinstance(owner, Repeat):
            labels[id(thing)] = paths.get(id(owner), f"repeat{len(labels)}")
        elif id(thing) in paths:
            labels[id(thing)] = paths[id(thing)]
        labels.setdefault(id(thing), f"choice{len(labels)}")
    return labels


def _named_arguments(module: nn.Module) -> dict[str, Any]:
    if isinstance(module, Sliced):
        return module.arguments
    try:
        bound = inspect.signature(module.layer_class).bind(*module.args, **module.kwargs)
        return dict(bound.arguments)
    except (TypeError, ValueError):
        return {**{str(i): a for i, a in enumerate(module.args)}, **module.kwargs}


def freeze(module: nn.Module, inherit: bool = False) -> nn.Module:
    """The active path of a space module as a plain network (in place; ``inherit``: weights kept)."""
    if isinstance(module, LayerChoice):
        return freeze(module.chosen(), inherit)
    if isinstance(module, InputChoice):
        return ChosenInputs(module.active, module.reduction)
    if isinstance(module, Repeat):
        return nn.Sequential(*(freeze(b, inherit) for b in list(module.children())[:module.depth.active]))
    if isinstance(module, Sliced | Valued):
        return module.fixed(inherit)
    for name, child in list(module.named_children()):
        setattr(module, name, freeze(child, inherit))
    for name, value in list(vars(module).items()):
        if isinstance(value, Expr):
            setattr(module, name, value.value)
    return module


@dataclass
class ModelConfig(SpaceConfig):
    space: Any = setting(MISSING, "the model space: path/to/file.py:Name or package.module:Name (from Python, the "
                                  "class itself)")
    kwargs: dict = setting({}, "the model's constructor arguments besides those the data gives (num_classes, "
                               "in_channels, in_features)", OfType((dict,), "a mapping"))


class ModelSpace(SearchSpace):
    """The architectures of a model space: ``rlnas.model_space(MyNet, width=32)``."""

    Config: ClassVar[type[SpaceConfig]] = ModelConfig
    name = "model"

    def __init__(self, space: Any = None, *, config: ModelConfig | None = None, **settings: Any):
        if space is not None:
            settings["space"] = space
        super().__init__(config=config, **settings)
        spec = self.config.space
        self.factory = load_factory(spec) if isinstance(spec, str) else spec
        if not callable(self.factory):
            raise ValueError(f"env.space={spec!r} is not a model class or factory")
        self._given = None if isinstance(spec, str) else spec  # a class from Python travels as itself
        if self._given is not None:  # the config names it, as a config file would
            self.config.space = f"{spec.__module__}:{spec.__qualname__}"
        self.kwargs = dict(self.config.kwargs)
        self.blueprint = Blueprint(self.factory, self.network_kwargs(placeholders=True))
        self._steps = [(i, j) for i, d in enumerate(self.blueprint.decisions) for j in range(d.n_chosen)]
        self.num_decisions = len(self._steps)
        self.max_choices = max(len(d.options) for d in self.blueprint.decisions)

    def network_kwargs(self, input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                       placeholders: bool = False) -> dict[str, Any]:
        """The constructor's arguments: the space's, and what the data gives of those it takes by
        name (``num_classes``, ``in_channels`` and ``in_features``: an input's first dimension);
        ``placeholders`` stand in for those it needs when there is no data (to list the choices)."""
        taken = inspect.signature(self.factory).parameters
        given = {} if input_shape is None else {"num_classes": num_classes, "in_channels": input_shape[0],
                                                "in_features": input_shape[0]}
        if placeholders:
            given = {k: v for k, v in PLACEHOLDERS.items()
                     if k in taken and taken[k].default is inspect.Parameter.empty} | given
        return {**{k: v for k, v in given.items() if k in taken}, **self.kwargs}

    @property
    def decisions(self) -> list[Decision]:
        return self.blueprint.decisions

    def decision_names(self) -> list[str]:
        return [d.label if d.n_chosen == 1 else f"{d.label}[{j}]" for d, j in self.step_decisions()]

    def step_decisions(self) -> list[tuple[Decision, int]]:
        """Each step's decision, and which of its picks the step is (0 but for an InputChoice's)."""
        return [(self.decisions[i], j) for i, j in self._steps]

    def choice_names(self, step: int) -> list[str]:
        d = self.decisions[self._steps[step][0]]
        return [f"input {o}" if d.kind == "input" else str(o) for o in d.options]

    def choice_classes(self) -> list[list[int]]:
        """Each step's choices by class, for the planner: a LayerChoice's, else the choice itself."""
        return [[*(d.classes if d.kind == "layer" else range(len(d.options))),
                 *range(len(d.options), self.max_choices)] for d, _ in self.step_decisions()]

    def strongest(self, weights: Sequence[torch.Tensor]) -> Decisions:
        """The architecture ``weights`` (a vector per decision over its options, as a relaxation
        learns them) point at: each decision's heaviest option, an InputChoice's ``n_chosen``
        heaviest inputs in order; a decision its depths switch off takes its one legal action."""
        decisions: list[int] = []
        for i, j in self._steps:
            d, legal = self.decisions[i], self.legal_choices(decisions)
            picks = sorted(weights[i].topk(d.n_chosen).indices.tolist())
            decisions.append(picks[j] if len(legal) > 1 else legal[0])
        return self.validate(decisions)

    def _depths(self, prefix: Sequence[int]) -> dict[int, Any]:
        """The value of each decision made by ``prefix`` (depths are read from it)."""
        first = {}
        for step, (i, j) in enumerate(self._steps[:len(prefix)]):
            if j == 0:
                first[i] = self.decisions[i].options[prefix[step]]
        return first

    def legal_choices(self, prefix: Sequence[int]) -> range:
        i, j = self._steps[len(prefix)]
        d = self.decisions[i]
        if not self.blueprint.in_use(i, self._depths(prefix)):
            return range(1)
        low = prefix[-1] + 1 if j > 0 else 0
        return range(low, len(d.options) - d.n_chosen + j + 1)

    @cached_property  # agents ask before every proposal
    def size(self) -> int:
        """Distinct architectures: every assignment of the depths, times the choices each leaves in use."""
        first_steps = [self._steps.index((i, 0)) for i in range(len(self.decisions))]
        depths = sorted({first_steps[d] for dec in self.decisions for alt in dec.conditions for d, _ in alt})

        def count(k: int, decisions: list[int]) -> int:
            if k == len(depths):
                chosen = self._depths(decisions)
                return math.prod(math.comb(len(d.options), d.n_chosen) for i, d in enumerate(self.decisions)
                                 if first_steps[i] not in depths and self.blueprint.in_use(i, chosen))
            s = depths[k]
            return sum(count(k + 1, [*decisions[:s], c, *decisions[s + 1:]]) for c in self.legal_choices(decisions[:s]))

        return count(0, [0] * self.num_decisions)

    def to_arch(self, decisions: Sequence[int]) -> dict[str, Any]:
        """The architecture as label to choice, over the decisions it makes."""
        arch, chosen = {}, self._depths(decisions)
        for step, (i, _) in enumerate(self._steps):
            d = self.decisions[i]
            if self.blueprint.in_use(i, chosen):
                value = d.options[decisions[step]]
                arch[d.label] = [*arch.get(d.label, []), value] if d.kind == "input" else value
        return arch

    def to_string(self, decisions: Sequence[int]) -> str:
        return json.dumps(self.to_arch(decisions))

    def from_string(self, arch: str | Mapping[str, Any]) -> Decisions:
        arch = json_mapping(arch, "model", "an architecture (a JSON mapping of label to choice)")
        labels = [d.label for d in self.decisions]
        unknown = [k for k in arch if k not in labels]
        if unknown:
            raise ValueError(f"architecture names unknown label {unknown[0]!r}; the labels are {', '.join(labels)}")
        decisions: list[int] = []
        for i, d in enumerate(self.decisions):
            if not self.blueprint.in_use(i, self._depths(decisions)):
                if d.label in arch:
                    raise ValueError(f"architecture sets {d.label!r}, which its depths switch off")
                decisions += [0] * d.n_chosen
                continue
            if d.label not in arch:
                raise ValueError(f"architecture has no value for {d.label!r} (one of {d.options})")
            values = arch[d.label]
            values = list(values) if d.kind == "input" and isinstance(values, list | tuple) else [values]
            if len(values) != d.n_chosen or any(v not in d.options for v in values) or values != sorted(values) \
                    or len(set(values)) < len(values):
                raise ValueError(f"architecture sets {d.label!r} to {arch[d.label]!r}; allowed: "
                                 + (f"{d.n_chosen} distinct increasing indices below {len(d.options)}"
                                    if d.kind == "input" else f"one of {d.options}"))
            decisions += [d.options.index(v) for v in values]
        return self.validate(decisions)

    def describe(self, arch: str) -> dict[str, Any]:
        return json.loads(arch)

    def parameters(self, arch: str) -> dict[str, Any]:
        """What a trial receives: ``{"arch": {label: choice}}``, for :func:`rlnas.nn.fixed_arch`."""
        return {"arch": json.loads(arch)}

    def build(self, arch: str | Mapping[str, Any], input_shape: Sequence[int] | None = None,
              num_classes: int | None = None) -> nn.Module:
        """A plain network of ``arch`` for data of ``input_shape`` and ``num_classes`` (see
        :meth:`network_kwargs`), initialised from torch's current generator."""
        blueprint = Blueprint(self.factory, self.network_kwargs(input_shape, num_classes), record_seed=None)
        blueprint.activate(self.to_arch(self.from_string(arch)))
        return freeze(blueprint.model)

    def __getstate__(self) -> dict:
        """To another process: the config (the space file is loaded again there), or the class given."""
        return {"config": self.config, "given": self._given}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["given"], config=state["config"])


def model_space(factory: Callable[..., nn.Module], **kwargs: Any) -> ModelSpace:
    """The search space of a model written with :mod:`rlnas.nn`'s choices."""
    return ModelSpace(factory, kwargs=kwargs)


def fixed_arch(factory: Callable[..., nn.Module], arch: str | Mapping[str, Any], **kwargs: Any) -> nn.Module:
    """``factory(**kwargs)`` as the plain network ``arch`` names: no choice is left in it."""
    return ModelSpace(factory, kwargs=kwargs).build(arch)
