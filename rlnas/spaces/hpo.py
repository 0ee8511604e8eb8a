"""Hyperparameter search spaces in NNI's JSON format, as a :class:`~rlnas.spaces.SearchSpace`.

A space written for NNI loads here unchanged, and a trial receives the dict NNI would hand
it (a nested choice's value is the chosen option's dict, ``{"_name": "sgd", "momentum": 0.9}``)::

    {"lr":         {"_type": "loguniform", "_value": [1e-4, 1e-1]},
     "optimizer":  {"_type": "choice",     "_value": [
         {"_name": "sgd", "momentum": {"_type": "uniform", "_value": [0.0, 0.99]}},
         {"_name": "adam"}]}}

Every hyperparameter is one decision. A choice picks one of its options. A range is, by
default, a value ``u`` in [0, 1] (a ``Box`` action) mapped onto the range as NNI draws it
(:func:`from_unit`): ``low + u (high - low)`` for uniform, the same on the log scale for
loguniform, ``lower + floor(u (upper - lower))`` for randint (upper excluded), the normal
quantile ``u`` (held within ``[1e-6, 1 - 1e-6]``: ±4.75 sigma) for (log)normal, and for the
q types that value rounded to a multiple of ``q`` (clipped to ``[low, high]`` for the
uniform ones). With ``levels`` set, a range is instead a choice over a grid, for agents
that act only discretely: randint's integers (or ``levels`` of them); the exact values of
the q types; ``levels`` points evenly or log-spaced for (log)uniform; the ``levels``
quantiles at ``(i + 1/2) / levels`` for (log)normal.

Decisions follow the keys depth first, a nested choice's sub-hyperparameters right after
it; one its parent did not choose has the single legal action 0 (a value: 0.0). A point's
canonical string is its parameter dict as sorted JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import yaml

from rlnas.core.settings import MISSING, Range, setting
from rlnas.spaces.base import Decisions, SearchSpace, SpaceConfig, json_mapping

# _type -> the names of its _value's numbers (choice takes a list of options instead)
ARGUMENTS = {
    "randint": ("lower", "upper"),
    "uniform": ("low", "high"),
    "quniform": ("low", "high", "q"),
    "loguniform": ("low", "high"),
    "qloguniform": ("low", "high", "q"),
    "normal": ("mu", "sigma"),
    "qnormal": ("mu", "sigma", "q"),
    "lognormal": ("mu", "sigma"),
    "qlognormal": ("mu", "sigma", "q"),
}
TYPES = ("choice", *ARGUMENTS)


@dataclass(frozen=True)
class Hyperparameter:
    """One decision, active when choice ``parent`` (None: top level) took ``option``."""

    path: str
    key: str
    type: str
    grid: tuple  # what each action sets it to; for a choice, the options (dicts for nested ones); () for a value
    parent: int | None
    option: int | None
    args: tuple = ()  # a range's numbers (its _value)

    @property
    def continuous(self) -> bool:
        return not self.grid


def load_search_space(source: str | Path | Mapping) -> dict:
    """A search space from a dict or a ``.json`` / ``.yaml`` file, as a plain dict."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if path.suffix not in (".json", ".yaml", ".yml"):
        raise ValueError(f"search space {str(path)!r}: expected a .json, .yaml or .yml file")
    if not path.is_file():
        raise FileNotFoundError(f"search space {str(path)!r}: no such file")
    text = path.read_text()
    try:
        space = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"search space {str(path)!r} is not valid {path.suffix[1:].upper()}: {err}") from err
    if not isinstance(space, dict):
        raise ValueError(f"search space {str(path)!r}: expected a mapping of names to "
                         f"{{'_type': ..., '_value': ...}}, got {type(space).__name__}")
    return space


@dataclass
class HPOConfig(SpaceConfig):
    # A path from the command line; a dict from Python (or a saved model's config) is the space itself.
    search_space: Any = setting(MISSING, "a .json or .yaml file in NNI's search-space format (from Python, "
                                         "the space itself as a dict)")
    levels: int | None = setting(None, "grid points of each range (uniform, loguniform, normal, ...), for agents "
                                       "that act only discretely; q types take their exact values",
                                 Range(2, integer=True, none_means="ranges stay continuous: a value in [0, 1] "
                                                                    "mapped onto each range"))


class HPOSpace(SearchSpace):
    """An NNI-format search space: ranges continuous, or a grid of ``levels`` points each."""

    Config = HPOConfig
    name = "hpo"

    def __init__(self, search_space: str | Path | Mapping | None = None, *, config: HPOConfig | None = None,
                 **settings: Any):
        if search_space is not None:
            settings["search_space"] = search_space
        super().__init__(config=config, **settings)
        self.spec, self.levels = load_search_space(self.config.search_space), self.config.levels
        if not self.spec:
            raise ValueError("search space is empty: give at least one hyperparameter")
        self.params: list[Hyperparameter] = []
        self._size = self._add_level(self.spec, "", None, None)
        self.num_decisions = len(self.params)
        self.max_choices = max(len(p.grid) or 1 for p in self.params)

    # -- reading the space ----------------------------------------------------------------
    def _add_level(self, spec: Mapping, prefix: str, parent: int | None, option: int | None) -> int:
        """Add the hyperparameters of one dict level; return how many points it holds."""
        size = 1
        for key, entry in spec.items():
            if key == "_name":
                continue
            path = f"{prefix}{key}"
            kind, value = _entry(path, entry)
            index = len(self.params)
            if kind == "choice":
                self.params.append(Hyperparameter(path, key, kind, tuple(value), parent, option))
                points = 0  # a nested option's sub-hyperparameters follow its choice, option by option
                for i, o in enumerate(value):
                    points += self._add_level(o, f"{path} > {o['_name']} > ", index, i) if isinstance(o, dict) else 1
                size *= points
            elif self.levels is None:
                self.params.append(Hyperparameter(path, key, kind, (), parent, option, tuple(value)))
                size = math.inf
            else:
                grid = _grid(path, kind, value, self.levels)
                self.params.append(Hyperparameter(path, key, kind, grid, parent, option, tuple(value)))
                size *= len(grid)
        return size

    # -- SearchSpace ----------------------------------------------------------------------
    @property
    def size(self) -> int | float:
        """Distinct points: ``math.inf`` where a range is continuous."""
        return self._size

    def is_value(self, step: int) -> bool:
        return self.params[step].continuous

    def value_used(self, prefix: Sequence[int | float]) -> bool:
        return self.active(prefix)[len(prefix)]

    def canonical_value(self, step: int, value: float) -> float:
        p = self.params[step]
        return to_unit(p.type, p.args, from_unit(p.type, p.args, value))

    def decision_names(self) -> list[str]:
        return [p.path for p in self.params]

    def choice_names(self, step: int) -> list[str]:
        return [_show(v) for v in self.params[step].grid]

    def active(self, prefix: Sequence[int]) -> list[bool]:
        """Which of the first ``len(prefix) + 1`` hyperparameters the decisions so far use."""
        flags: list[bool] = []
        for step in range(min(len(prefix) + 1, self.num_decisions)):
            p = self.params[step]
            flags.append(p.parent is None or (flags[p.parent] and prefix[p.parent] == p.option))
        return flags

    def legal_choices(self, prefix: Sequence[int]) -> range:
        step = len(prefix)
        if self.params[step].continuous:
            return range(0)
        return range(len(self.params[step].grid)) if self.active(prefix)[step] else range(1)

    def illegal_message(self, step: int, choice: Any, prefix: Sequence[int]) -> str:
        p = self.params[step]
        if p.continuous:
            return (f"hpo: {p.path} ({p.type} {list(p.args)}) takes a value in [0, 1], mapped onto its range; "
                    f"got {choice!r}")
        if not self.active(prefix)[step]:
            p = self.params[step]
            return (f"hpo: {p.path} is not used (its choice {self.params[p.parent].path} took another option): "
                    f"its only legal action is 0, got {choice}")
        return super().illegal_message(step, choice, prefix)

    def parameters(self, arch: str) -> dict[str, Any]:
        """The parameter dict a trial receives for the canonical string ``arch``."""
        return self.to_parameters(self.from_string(arch))

    def to_parameters(self, decisions: Sequence[int]) -> dict[str, Any]:
        decisions = self.validate(decisions)
        flags = self.active(decisions[:-1])
        levels: dict[int | None, dict[str, Any]] = {None: {}}
        for step, (p, choice) in enumerate(zip(self.params, decisions, strict=True)):
            if not flags[step]:
                continue
            value = from_unit(p.type, p.args, choice) if p.continuous else p.grid[choice]
            if isinstance(value, dict):  # a nested choice: its chosen option's dict, filled in below
                value = levels[step] = {"_name": value["_name"]}
            levels[p.parent][p.key] = value
        return levels[None]

    def to_string(self, decisions: Sequence[int]) -> str:
        return json.dumps(self.to_parameters(decisions), sort_keys=True, separators=(",", ":"))

    def from_string(self, arch: str) -> Decisions:
        return self.from_parameters(json_mapping(arch, "hpo", "a JSON parameter dict"))

    def from_parameters(self, params: Mapping[str, Any]) -> Decisions:
        """The decisions of a parameter dict; the first bad key is named."""
        decisions: list[int | float] = []
        dicts: dict[int | None, Mapping[str, Any]] = {None: params}
        for step, p in enumerate(self.params):
            if not self.active(decisions)[step]:
                decisions.append(0.0 if p.continuous else 0)
                continue
            here = dicts[p.parent]
            if p.key not in here:
                raise ValueError(f"hpo: parameter {p.path} is missing")
            if p.continuous:
                decisions.append(to_unit(p.type, p.args, here[p.key], p.path))
                continue
            choice = _grid_index(p, here[p.key])
            if isinstance(p.grid[choice], dict):
                dicts[step] = here[p.key]
            decisions.append(choice)
        for parent, here in dicts.items():
            known = {p.key for p in self.params
                     if p.parent == parent and (parent is None or p.option == decisions[parent])}
            unknown = sorted(set(here) - known - ({"_name"} if parent is not None else set()))
            if unknown:
                where = "" if parent is None else f" under {self.params[parent].path}"
                raise ValueError(f"hpo: unknown parameter {unknown[0]!r}{where}; the space has "
                                 f"{', '.join(sorted(known)) or 'none there'}")
        return tuple(decisions)


NORMAL_TAIL = 1e-6  # the normal types' unit interval spans the quantiles [1e-6, 1 - 1e-6]: ±4.75 sigma


def from_unit(kind: str, args: Sequence[float], u: float) -> int | float:
    """The value of range ``kind`` (NNI's ``_type``, ``_value`` ``args``) that ``u`` in [0, 1] stands for."""
    u = min(max(float(u), 0.0), 1.0)
    if kind == "randint":
        lower, upper = args
        return min(lower + math.floor(u * (upper - lower)), upper - 1)
    if kind in ("uniform", "quniform"):
        x = args[0] + u * (args[1] - args[0])
    elif kind in ("loguniform", "qloguniform"):
        x = math.exp(math.log(args[0]) + u * (math.log(args[1]) - math.log(args[0])))
    else:
        x = NormalDist(args[0], args[1]).inv_cdf(min(max(u, NORMAL_TAIL), 1.0 - NORMAL_TAIL))
        x = math.exp(x) if kind.endswith("lognormal") else x
    if not kind.startswith("q"):
        return _tidy(x)
    low, high = (args[0], args[1]) if "uniform" in kind else (-math.inf, math.inf)
    return _tidy(min(max(round(x / args[-1]) * args[-1], low), high))


def to_unit(kind: str, args: Sequence[float], value: Any, path: str = "x") -> float:
    """Where in [0, 1] range ``kind`` takes ``value`` (the middle of an integer's interval);
    a value the range cannot take is refused, naming the range."""
    if not _is_number(value) or (kind == "randint" and not float(value).is_integer()):
        raise ValueError(f"hpo: {path}={value!r} is not {'an integer' if kind == 'randint' else 'a number'}")
    bounds = {"randint": (args[0], args[1] - 1), "normal": (-math.inf, math.inf), "lognormal": (0.0, math.inf),
              "qnormal": (-math.inf, math.inf), "qlognormal": (0.0, math.inf)}.get(kind, args[:2])
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"hpo: {path}={value!r} is outside its range ({kind} {list(args)})")
    if kind == "randint":
        u = (value - args[0] + 0.5) / (args[1] - args[0])
    elif kind in ("uniform", "quniform"):
        u = (value - args[0]) / (args[1] - args[0])
    elif kind in ("loguniform", "qloguniform"):
        u = (math.log(value) - math.log(args[0])) / (math.log(args[1]) - math.log(args[0]))
    else:
        x = math.log(max(value, 1e-300)) if kind.endswith("lognormal") else value
        u = NormalDist(args[0], args[1]).cdf(x)
    return min(max(float(u), 0.0), 1.0)


def _entry(path: str, entry: Any) -> tuple[str, list]:
    """Check one ``{"_type": ..., "_value": ...}``; return the type and its value."""
    if not isinstance(entry, Mapping) or "_type" not in entry or "_value" not in entry:
        raise ValueError(f"search space: {path}: expected {{'_type': ..., '_value': ...}}, got {entry!r}")
    extra = sorted(set(entry) - {"_type", "_value"})
    if extra:
        raise ValueError(f"search space: {path}: unknown key {extra[0]!r}; an entry has only '_type' and '_value'")
    kind, value = entry["_type"], entry["_value"]
    if kind not in TYPES:
        raise ValueError(f"search space: {path}: unknown _type {kind!r}; allowed: {', '.join(TYPES)}")
    if not isinstance(value, list | tuple):
        raise ValueError(f"search space: {path}: _value of {kind} must be a list, got {value!r}")
    if kind == "choice":
        _check_options(path, value)
        return kind, list(value)
    names = ARGUMENTS[kind]
    if len(value) != len(names) or not all(_is_number(v) for v in value):
        raise ValueError(f"search space: {path}: _value of {kind} is [{', '.join(names)}] "
                         f"({len(names)} numbers), got {list(value)!r}")
    args = dict(zip(names, value, strict=True))
    if kind == "randint":
        if not all(float(v).is_integer() for v in value):
            raise ValueError(f"search space: {path}: randint's lower and upper must be integers, got {list(value)!r}")
        value = [int(v) for v in value]
    if "low" in args and not args["low"] < args["high"]:
        raise ValueError(f"search space: {path}: {kind} needs low < high, got low={args['low']}, high={args['high']}")
    if kind == "randint" and not value[0] < value[1]:
        raise ValueError(f"search space: {path}: randint needs lower < upper (upper is excluded), got {value!r}")
    if kind.startswith(("loguniform", "qloguniform")) and args["low"] <= 0:
        raise ValueError(f"search space: {path}: {kind} needs low > 0 (it is log-spaced), got low={args['low']}")
    if "sigma" in args and args["sigma"] <= 0:
        raise ValueError(f"search space: {path}: {kind} needs sigma > 0, got sigma={args['sigma']}")
    if "q" in args and args["q"] <= 0:
        raise ValueError(f"search space: {path}: {kind} needs q > 0, got q={args['q']}")
    return kind, list(value)


def _check_options(path: str, options: Sequence) -> None:
    if not options:
        raise ValueError(f"search space: {path}: a choice needs at least one option")
    names = []
    for i, option in enumerate(options):
        if isinstance(option, Mapping):
            if not isinstance(option.get("_name"), str):
                raise ValueError(f"search space: {path}: option {i} is a nested space and needs a '_name' "
                                 f"(a string naming it), got {option!r}")
            names.append(option["_name"])
    if len(set(names)) < len(names):
        raise ValueError(f"search space: {path}: the nested options' _name values must differ, got {names}")
    values = [json.dumps(o, sort_keys=True) for o in options]
    if len(set(values)) < len(values):
        raise ValueError(f"search space: {path}: a choice's options must differ, got {list(options)!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _tidy(x: float) -> float:
    """12 significant digits: 0.1 * 3 is 0.3 here, so strings and dicts stay canonical."""
    return float(f"{x:.12g}")


def _quantised(values: np.ndarray, q: float, low: float = -math.inf, high: float = math.inf) -> tuple:
    return tuple(dict.fromkeys(_tidy(min(max(round(v / q) * q, low), high)) for v in values))


def _grid(path: str, kind: str, value: list, levels: int) -> tuple:
    if kind == "randint":
        lower, upper = value
        return tuple(dict.fromkeys(round(float(v)) for v in np.linspace(lower, upper - 1, min(levels, upper - lower))))
    if kind in ("quniform", "qloguniform"):
        low, high, q = value
        steps = np.arange(round(low / q), round(high / q) + 1) * q
        return _quantised(steps, q, low, high)
    if kind == "uniform":
        return tuple(_tidy(v) for v in np.linspace(value[0], value[1], levels))
    if kind == "loguniform":
        return tuple(_tidy(v) for v in np.geomspace(value[0], value[1], levels))
    mu, sigma = value[:2]
    normal = np.array([NormalDist(mu, sigma).inv_cdf((i + 0.5) / levels) for i in range(levels)])
    points = np.exp(normal) if kind.endswith("lognormal") else normal
    if kind.startswith("q"):
        return _quantised(points, value[2])
    return tuple(_tidy(v) for v in points)


def _grid_index(p: Hyperparameter, value: Any) -> int:
    """Which action sets ``p`` to ``value``; raises listing the values the grid holds."""
    for i, option in enumerate(p.grid):
        if isinstance(option, dict):
            found = isinstance(value, Mapping) and value.get("_name") == option["_name"]
        elif _is_number(option) and _is_number(value):  # 0.001 written by hand is 1e-3 on the grid
            found = math.isclose(option, value, rel_tol=1e-9, abs_tol=1e-12)
        else:
            found = type(option) is type(value) and option == value
        if found:
            return i
    shown = ", ".join(_show(v) for v in p.grid[:20]) + (", ..." if len(p.grid) > 20 else "")
    raise ValueError(f"hpo: {p.path}={value!r} is not one of its values: {shown}")


def _show(value: Any) -> str:
    return value["_name"] if isinstance(value, dict) else str(value)
