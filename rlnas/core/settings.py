"""Settings: one typed declaration per setting, checked when it is made.

Every component has one config dataclass; each field is declared once with :func:`setting`
(default, one-line doc, what it may be), and a bad value fails on construction::

    @dataclass
    class EvolutionConfig(Component):
        population_size: int = setting(10, "members kept (the most recent)", INT_AT_LEAST_1)
        sample_size: int = setting(3, "members drawn to pick a parent from", INT_AT_LEAST_1)

        def validate(self) -> None:
            check(self.owner, vars(self), {"sample_size": Range(1, self.population_size, integer=True,
                                                                high_name="population_size")})

    EvolutionConfig(sample_size=50)
    # ValueError: evolution: sample_size=50 must be an integer in [1, population_size = 10]

Settings tuned for NAS episodes are a named preset (``PRESETS = {"nas": {...}}``), so the
defaults stay the published ones.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, ClassVar, TypeVar

MISSING = "???"  # a value the user must give (OmegaConf's and Hydra's mark for it)


@dataclass(frozen=True)
class Range:
    """A number between ``low`` and ``high`` (either absent or open); ``None`` too if
    ``optional`` or ``none_means`` says what it means; ``*_name`` names a bound from another key."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False
    none_means: str = ""
    low_name: str = ""
    high_name: str = ""

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.optional or bool(self.none_means)
        if not _is_number(value, Integral if self.integer else Real):
            return False
        low, high = _number_or_none(self.low), _number_or_none(self.high)
        return ((low is None or (value > low if self.low_open else value >= low))
                and (high is None or (value < high if self.high_open else value <= high)))

    def __str__(self) -> str:
        def bound(value: float, name: str) -> str:
            return f"{name} = {value:g}" if name else f"{value:g}"

        kind = "an integer" if self.integer else "a number"
        low, high = _number_or_none(self.low), _number_or_none(self.high)
        if low is not None and high is not None:
            text = (f"{kind} in {'(' if self.low_open else '['}{bound(low, self.low_name)}, "
                    f"{bound(high, self.high_name)}{')' if self.high_open else ']'}")
        elif low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {bound(low, self.low_name)}"
        elif high is not None:
            text = f"{kind} {'<' if self.high_open else '<='} {bound(high, self.high_name)}"
        else:
            text = kind
        return text + (f", or null ({self.none_means})" if self.none_means else ", or null" if self.optional else "")


def _is_number(value: Any, kind: type = Real) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _number_or_none(bound: Any) -> float | None:
    return bound if _is_number(bound) else None


@dataclass(frozen=True)
class OneOf:
    """One of a few named values."""

    choices: tuple[Any, ...]

    def allows(self, value: Any) -> bool:
        return any(value == c and type(value) is type(c) for c in self.choices)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


@dataclass(frozen=True)
class Sizes:
    """Layer widths: a non-empty list of integers >= 1."""

    def allows(self, value: Any) -> bool:
        return (isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
                and all(INT_AT_LEAST_1.allows(v) for v in value))

    def __str__(self) -> str:
        return "a non-empty list of integers >= 1"


@dataclass(frozen=True)
class Text:
    """A non-empty string (a path, a command, an import path), or null where ``none_means``."""

    what: str = "a non-empty string"
    none_means: str = ""

    def allows(self, value: Any) -> bool:
        return (value is None and bool(self.none_means)) or (isinstance(value, str) and bool(value.strip()))

    def __str__(self) -> str:
        return self.what + (f", or null ({self.none_means})" if self.none_means else "")


@dataclass(frozen=True)
class OfType:
    """A value of one of ``types`` (a setting whose annotation is all there is to check)."""

    types: tuple[type, ...]
    what: str

    def allows(self, value: Any) -> bool:
        return isinstance(value, self.types) and not (isinstance(value, bool) and bool not in self.types)

    def __str__(self) -> str:
        return self.what


Spec = Range | OneOf | Sizes | Text | OfType
_KINDS = {int: Range(integer=True), float: Range(), bool: OneOf((False, True)), str: OfType((str,), "a string"),
          list: OfType((list, tuple), "a list"), dict: OfType((dict,), "a mapping")}


def _annotated(hint: Any) -> Spec | None:
    """What a field's annotation alone allows (``int | None``: an integer, or null)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (types.UnionType, typing.Union) and len(args) == 1:
        spec = _annotated(args[0])
        if isinstance(spec, Range):
            return dataclasses.replace(spec, optional=True)
        return None if spec is None else OfType(getattr(spec, "types", ()) + (type(None),), f"{spec}, or null")
    kind = _KINDS.get(typing.get_origin(hint) or hint)
    return kind

POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
UNIT = Range(0, 1)  # probabilities, discounts, mixing weights
DECAY = Range(0, 1, high_open=True)  # exponential averages: at 1 one would never move
INT_AT_LEAST_0 = Range(0, integer=True)
INT_AT_LEAST_1 = Range(1, integer=True)
SIZES = Sizes()
THREADS = Range(1, integer=True, none_means="torch's default, all cores")  # torch CPU threads


def check(owner: str, values: Mapping[str, Any], ranges: Mapping[str, Spec]) -> None:
    """Raise ``ValueError`` naming ``owner`` and each key of ``ranges`` whose value is not allowed."""
    bad = [f"{key}={values[key]!r} must be {spec}" for key, spec in ranges.items() if not spec.allows(values[key])]
    if bad:
        raise ValueError(f"{owner}: " + "; ".join(bad))


@functools.cache
def _specs(config: type) -> dict[str, Spec]:
    """What each field of ``config`` may be: its ``allowed``, else what its annotation says."""
    hints = typing.get_type_hints(config)
    found = {f.name: f.metadata.get("allowed") or _annotated(hints[f.name]) for f in dataclasses.fields(config)
             if "nested" not in f.metadata}
    return {name: spec for name, spec in found.items() if spec is not None}


def setting(default: Any, doc: str, allowed: Spec | None = None) -> Any:
    """A config field: its default, its one-line doc, and what it may be."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"doc": doc, "allowed": allowed})
    return field(default=default, metadata={"doc": doc, "allowed": allowed})


def nested(config: type, doc: str, **defaults: Any) -> Any:
    """A field holding another settings dataclass, made (and checked) from a dict given for it."""
    return field(default_factory=lambda: config(**defaults), metadata={"doc": doc, "nested": config})


def redefault(config: type, name: str, default: Any) -> Any:
    """Setting ``name`` of ``config`` with another default, in a subclass; doc and range kept."""
    meta = config.__dataclass_fields__[name].metadata
    return setting(default, meta["doc"], meta["allowed"])


S = TypeVar("S", bound="Settings")


@dataclass
class Settings:
    """Base of every config dataclass: checks its fields, then :meth:`validate`, when made."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "nested" in f.metadata and isinstance(value, Mapping):
                setattr(self, f.name, f.metadata["nested"].make(value))
            elif isinstance(value, os.PathLike):  # a path given from Python: kept as the string a config holds
                setattr(self, f.name, os.fspath(value))
        missing = [f.name for f in dataclasses.fields(self) if getattr(self, f.name) == MISSING]
        if missing:  # a "???" default: the user must say it
            raise ValueError(f"{self.owner}: {', '.join(missing)} has no value; give it, "
                             f"e.g. on the command line {self.key(missing[0])}=...")
        check(self.owner, vars(self), _specs(type(self)))
        self.validate()

    @property
    def owner(self) -> str:
        """Who the settings belong to, as messages name it."""
        return type(self).__name__

    def key(self, name: str) -> str:
        """How the command line names setting ``name``."""
        return name

    def validate(self) -> None:
        """Rules between settings (one bounded by another); raise ``ValueError`` naming them."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def node(cls, preset: str | None = None, **overrides: Any) -> dict[str, Any]:
        """The defaults, ``preset``, ``overrides`` as plain unchecked values: a config group entry."""
        values = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                  for f in dataclasses.fields(cls) if f.init}
        values.update({**(cls.PRESETS[preset] if preset else {}), **overrides})
        return {k: v.to_dict() if isinstance(v, Settings) else copy.deepcopy(v) for k, v in values.items()}

    @classmethod
    def make(cls: type[S], values: Mapping[str, Any] | None = None, preset: str | None = None, **overrides: Any) -> S:
        """``preset``, then ``values``, then ``overrides``, checked; unknown keys refused with what exists."""
        if preset is not None and preset not in cls.PRESETS:
            raise ValueError(f"{cls.__name__} has no preset {preset!r}; presets: {', '.join(cls.PRESETS) or 'none'}")
        given = {**(cls.PRESETS[preset] if preset else {}), **(values or {}), **overrides}
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        unknown = sorted(set(given) - set(names))
        if unknown:
            takes = ", ".join(n for n in names if n != "name") or "none"
            raise ValueError(f"{given.get('name') or cls.__name__} has no setting(s) {unknown}; it takes {takes}")
        return cls(**given)


@dataclass
class Component(Settings):
    """The settings of a registered component: ``name`` is what selects it (``agent=ppo``)."""

    name: str = setting("", "the registered name that selects this component")
    group: ClassVar[str] = ""  # its config group on the command line: agent, env, evaluator, ...
    kind: ClassVar[str] = ""  # how messages name the owner after its name: "scratch evaluator"

    @property
    def owner(self) -> str:
        return " ".join(part for part in (self.name or type(self).__name__, self.kind) if part)

    def key(self, name: str) -> str:
        return f"{self.group}.{name}" if self.group else name


def configured(config_class: type[S], config: Settings | None, settings: Mapping[str, Any]) -> S:
    """``config`` as given, or made from ``settings`` (both: the settings override it)."""
    if config is not None and not settings:
        return config
    return config_class.make(None if config is None else config.to_dict(), **settings)

