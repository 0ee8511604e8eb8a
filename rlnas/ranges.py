"""What each setting may be, checked once before anything is built.

An agent (or an evaluator, or the runner for the top-level keys) lists its ranges in one
place and calls :func:`check` first thing, so a bad value fails with a message that names
the owner, the key, the value and what is allowed, instead of as a torch traceback later
or, worse, silently::

    check("dqn", locals(), {"learning_rate": POSITIVE,
                            "batch_size": Range(1, buffer_size, integer=True, high_name="buffer_size")})

A bound taken from another key that is itself not a number is left out: that key's own
range reports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any


@dataclass(frozen=True)
class Range:
    """A number between ``low`` and ``high`` (either may be absent or open); an integer if
    ``integer``; ``None`` too if ``optional`` (whatever ``None`` means for that key, which
    ``none_means`` says). A bound that comes from another key is named by ``*_name``."""

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
            return self.optional
        if not _is_number(value, Integral if self.integer else Real):
            return False
        low, high = _number_or_none(self.low), _number_or_none(self.high)
        return ((low is None or (value > low if self.low_open else value >= low))
                and (high is None or (value < high if self.high_open else value <= high)))

    def __str__(self) -> str:
        def bound(value: float | None, name: str) -> str:
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


Spec = Range | OneOf | Sizes

POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
UNIT = Range(0, 1)  # probabilities, discounts, mixing weights
DECAY = Range(0, 1, high_open=True)  # exponential averages: at 1 one would never move
INT_AT_LEAST_0 = Range(0, integer=True)
INT_AT_LEAST_1 = Range(1, integer=True)
SIZES = Sizes()
THREADS = Range(1, integer=True, optional=True, none_means="torch's default, all cores")  # torch CPU threads


def check(owner: str, values: Mapping[str, Any], ranges: Mapping[str, Spec]) -> None:
    """Raise ``ValueError`` naming ``owner`` and every key of ``ranges`` whose value in
    ``values`` is not allowed, with its allowed range."""
    bad = [f"{key}={values[key]!r} must be {spec}" for key, spec in ranges.items() if not spec.allows(values[key])]
    if bad:
        raise ValueError(f"{owner}: " + "; ".join(bad))
