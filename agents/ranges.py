"""What each hyperparameter may be, checked once before an agent builds anything.

An agent lists its ranges in one place and calls :func:`check` first thing in its
constructor, so a bad value fails with a message that names the agent, the key, the value
and what is allowed, instead of as a torch traceback later or, worse, silently::

    check("ppo", locals(), {"learning_rate": POSITIVE, "batch_size": Range(1, rollout, integer=True,
                                                                           high_name="n_steps * num_envs")})
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
        if isinstance(value, bool) or not isinstance(value, Integral if self.integer else Real):
            return False
        return ((self.low is None or (value > self.low if self.low_open else value >= self.low))
                and (self.high is None or (value < self.high if self.high_open else value <= self.high)))

    def __str__(self) -> str:
        def bound(value: float | None, name: str) -> str:
            return "" if value is None else f"{name} = {value:g}" if name else f"{value:g}"

        kind = "an integer" if self.integer else "a number"
        low, high = bound(self.low, self.low_name), bound(self.high, self.high_name)
        if self.low is not None and self.high is not None:
            text = f"{kind} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {low}"
        elif self.high is not None:
            text = f"{kind} {'<' if self.high_open else '<='} {high}"
        else:
            text = kind
        return text + (f", or null ({self.none_means})" if self.none_means else ", or null" if self.optional else "")


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
INT_AT_LEAST_0 = Range(0, integer=True)
INT_AT_LEAST_1 = Range(1, integer=True)
SIZES = Sizes()


def check(agent: str, values: Mapping[str, Any], ranges: Mapping[str, Spec]) -> None:
    """Raise ``ValueError`` naming every key of ``ranges`` whose value in ``values`` is not
    allowed, with its allowed range."""
    bad = [f"{key}={values[key]!r} must be {spec}" for key, spec in ranges.items() if not spec.allows(values[key])]
    if bad:
        raise ValueError(f"{agent}: " + "; ".join(bad))
