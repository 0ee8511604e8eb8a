"""Search spaces: an architecture is a fixed-length sequence of decisions, with legal
choices given the ones before, sampling, mutation and a canonical string. A decision is a
choice (an int) or, in a space with continuous ranges, a value (a float in [0, 1] that the
space maps onto its range). Pure Python, so an env step never touches torch."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rlnas.core.settings import Component, OneOf, configured, setting

Decisions = tuple[int | float, ...]  # a choice per decision, or a value in [0, 1] for a continuous one
VALUE_STEP = 0.1  # sigma of a mutation's Gaussian step on a value, in the unit interval
VALUE_NEIGHBOURS = 2  # Gaussian steps a value decision contributes to an architecture's neighbours


@dataclass
class SpaceConfig(Component):
    """A search space's settings (the ``env`` group), and what the env does with an illegal action."""

    group: ClassVar[str] = "env"
    invalid_action: str = setting("raise", "an illegal action: raise (naming the legal ones), or penalize "
                                  "(end the episode with invalid_penalty), for agents that ignore masks",
                                  OneOf(("raise", "penalize")))
    invalid_penalty: float = setting(-1.0, "the reward of an episode ended by an illegal action")


class SearchSpace(ABC):
    """Architectures built by ``num_decisions`` choices of at most ``max_choices`` each."""

    Config: ClassVar[type[SpaceConfig]] = SpaceConfig
    name: str
    num_decisions: int
    max_choices: int

    def __init__(self, *, config: SpaceConfig | None = None, **settings: Any):
        self.config = configured(type(self).Config, config, {"name": self.name, **settings})

    @abstractmethod
    def decision_names(self) -> list[str]:
        """A short label per decision (for logs and error messages)."""

    @abstractmethod
    def choice_names(self, step: int) -> list[str]:
        """Human-readable names of every choice of decision ``step`` (legal or not)."""

    @abstractmethod
    def legal_choices(self, prefix: Sequence[int]) -> range:
        """Legal choices of decision ``len(prefix)`` given the decisions ``prefix`` (none for a value)."""

    @abstractmethod
    def to_string(self, decisions: Sequence[int]) -> str:
        """Canonical string of a complete architecture; :meth:`from_string` inverts it."""

    @abstractmethod
    def from_string(self, arch: str) -> Decisions:
        """Parse a canonical string; raises ``ValueError`` saying what is malformed."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of distinct decision sequences."""

    # -- continuous decisions (a space with none keeps these defaults) --------------------
    def is_value(self, step: int) -> bool:
        """Whether decision ``step`` is a value in [0, 1] (a ``Box`` action) rather than a choice."""
        return False

    def value_used(self, prefix: Sequence[int | float]) -> bool:
        """Whether value decision ``len(prefix)`` matters given ``prefix`` (an unused one is 0.0)."""
        return True

    def canonical_value(self, step: int, value: float) -> float:
        """The value in [0, 1] that stands for every value mapping to the same point as ``value``."""
        return value

    @property
    def has_values(self) -> bool:
        """Whether any decision is a value: the env's action space then has a ``Box`` part."""
        return any(self.is_value(step) for step in range(self.num_decisions))

    # -- shared behaviour ---------------------------------------------------------------
    def decision(self, prefix: Sequence[int | float], action: Any) -> int | float:
        """Decision ``len(prefix)`` as ``action`` makes it (a value canonical); else ``ValueError``."""
        step = len(prefix)
        if self.is_value(step):
            value = float(action)
            if not self.value_used(prefix):
                return 0.0
            if not 0.0 <= value <= 1.0:  # nan fails this too
                raise ValueError(self.illegal_message(step, action, prefix))
            return self.canonical_value(step, value)
        if (isinstance(action, float) and not action.is_integer()) or int(action) not in self.legal_choices(prefix):
            raise ValueError(self.illegal_message(step, action, prefix))
        return int(action)

    def validate(self, decisions: Sequence[int | float]) -> Decisions:
        """Return ``decisions`` as a tuple, or raise naming the first illegal decision."""
        if len(decisions) != self.num_decisions:
            raise ValueError(f"{self.name}: expected {self.num_decisions} decisions, got {len(decisions)}")
        made: list[int | float] = []
        for action in decisions:
            made.append(self.decision(made, action))
        return tuple(made)

    def illegal_message(self, step: int, choice: Any, prefix: Sequence[int]) -> str:
        if self.is_value(step):
            return (f"{self.name}: decision {step} ({self.decision_names()[step]}) takes a value in [0, 1], "
                    f"got {choice!r}")
        names = self.choice_names(step)
        allowed = ", ".join(f"{c}={names[c]}" for c in self.legal_choices(prefix))
        return (f"{self.name}: illegal choice {choice} for decision {step} ({self.decision_names()[step]}); "
                f"legal choices are {allowed}")

    def sample(self, rng: np.random.Generator) -> Decisions:
        """Uniform over each decision's legal choices (a value: uniform in [0, 1]), one after another."""
        decisions: list[int | float] = []
        for _ in range(self.num_decisions):
            decisions.append(self._draw(decisions, rng))
        return tuple(decisions)

    def mutate(self, decisions: Sequence[int | float], rng: np.random.Generator) -> Decisions:
        """Change one decision (Real et al. 2019): another choice, or a value moved by a Gaussian
        step of ``VALUE_STEP``; later ones resampled where no longer legal."""
        decisions = self.validate(decisions)
        mutable = self._mutable_steps(decisions)
        step = mutable[int(rng.integers(len(mutable)))]
        if self.is_value(step):
            return self._repair(decisions, step, self._nudge(step, decisions[step], rng), rng)
        others = [c for c in self.legal_choices(decisions[:step]) if c != decisions[step]]
        return self._repair(decisions, step, others[int(rng.integers(len(others)))], rng)

    def all_cells(self) -> list[Decisions]:
        """Every architecture of the space, depth first (``size`` of them: small spaces only)."""
        if self.has_values:
            raise ValueError(f"{self.name}: a space with continuous decisions has no finite list of points")
        cells: list[Decisions] = [()]
        for _ in range(self.num_decisions):
            cells = [(*prefix, c) for prefix in cells for c in self.legal_choices(prefix)]
        return cells

    def neighbours(self, decisions: Sequence[int | float], rng: np.random.Generator) -> list[Decisions]:
        """Every architecture one choice away, and ``VALUE_NEIGHBOURS`` Gaussian steps of each
        value, in a random order, repaired as in :meth:`mutate`."""
        decisions = self.validate(decisions)
        found = []
        for step in self._mutable_steps(decisions):
            if self.is_value(step):
                moves = [self._nudge(step, decisions[step], rng) for _ in range(VALUE_NEIGHBOURS)]
            else:
                moves = [c for c in self.legal_choices(decisions[:step]) if c != decisions[step]]
            found += [self._repair(decisions, step, move, rng) for move in moves]
        found = list(dict.fromkeys(n for n in found if n != decisions))
        return [found[i] for i in rng.permutation(len(found))]

    def _draw(self, prefix: Sequence[int | float], rng: np.random.Generator) -> int | float:
        """Decision ``len(prefix)`` drawn uniformly."""
        if self.is_value(len(prefix)):
            return self.canonical_value(len(prefix), float(rng.random())) if self.value_used(prefix) else 0.0
        legal = self.legal_choices(prefix)
        return legal[int(rng.integers(len(legal)))]

    def _nudge(self, step: int, value: float, rng: np.random.Generator) -> float:
        """``value`` moved by a Gaussian step, reflected at 0 and 1."""
        moved = abs(value + VALUE_STEP * float(rng.normal()))
        return self.canonical_value(step, min(max(2.0 - moved if moved > 1.0 else moved, 0.0), 1.0))

    def _mutable_steps(self, decisions: Decisions) -> list[int]:
        return [s for s in range(self.num_decisions)
                if (self.value_used(decisions[:s]) if self.is_value(s) else len(self.legal_choices(decisions[:s])) > 1)]

    def _repair(self, decisions: Decisions, step: int, choice: int | float, rng: np.random.Generator) -> Decisions:
        """``decisions`` with ``step`` set to ``choice``, later ones resampled where no longer legal
        (a value that comes into use is drawn; one that falls out of use is 0.0)."""
        changed = [*decisions[:step], choice, *decisions[step + 1:]]
        for later in range(step + 1, self.num_decisions):
            if self.is_value(later):
                used, was = self.value_used(changed[:later]), self.value_used(decisions[:later])
                if used != was:
                    changed[later] = self._draw(changed[:later], rng)
            elif changed[later] not in self.legal_choices(changed[:later]):
                changed[later] = self._draw(changed[:later], rng)
        return tuple(changed)

    def parameters(self, arch: str) -> dict | None:
        """A hyperparameter point's parameter dict, handed to objectives; None for an architecture."""
        return None

    def describe(self, arch: str) -> Any:
        """The architecture as reports and checkpoints carry it: its string (a model space's: its dict)."""
        return arch

    @staticmethod
    def arch_hash(arch: str) -> str:
        """A short id of an architecture's string, stable across processes (unlike ``hash``)."""
        return hashlib.sha256(arch.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(decisions={self.num_decisions}, size={self.size})"


def json_mapping(text: str | Mapping, owner: str, what: str) -> Mapping:
    """``text`` read as a JSON object (a mapping passes as it is); else ``ValueError`` saying
    it is not ``what``."""
    value = text
    if isinstance(text, str):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{owner}: {text!r} is not {what}: {err}") from err
    if not isinstance(value, Mapping):
        raise ValueError(f"{owner}: {text!r} is not {what}")
    return value
