"""Search spaces: an architecture is a fixed-length sequence of integer decisions, with
legal choices given the ones before, sampling, mutation and a canonical string. Pure
Python, so an env step never touches torch."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rlnas.core.settings import Component, OneOf, configured, setting

Decisions = tuple[int, ...]


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
        """Legal choices of decision ``len(prefix)`` given the decisions ``prefix``."""

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

    # -- shared behaviour ---------------------------------------------------------------
    def validate(self, decisions: Sequence[int]) -> Decisions:
        """Return ``decisions`` as a tuple, or raise naming the first illegal decision."""
        decisions = tuple(int(d) for d in decisions)
        if len(decisions) != self.num_decisions:
            raise ValueError(f"{self.name}: expected {self.num_decisions} decisions, got {len(decisions)}")
        for step, choice in enumerate(decisions):
            if choice not in self.legal_choices(decisions[:step]):
                raise ValueError(self.illegal_message(step, choice, decisions[:step]))
        return decisions

    def illegal_message(self, step: int, choice: int, prefix: Sequence[int]) -> str:
        names = self.choice_names(step)
        allowed = ", ".join(f"{c}={names[c]}" for c in self.legal_choices(prefix))
        return (f"{self.name}: illegal choice {choice} for decision {step} ({self.decision_names()[step]}); "
                f"legal choices are {allowed}")

    def sample(self, rng: np.random.Generator) -> Decisions:
        """Uniform over each decision's legal choices, one decision after another."""
        decisions: list[int] = []
        for _ in range(self.num_decisions):
            legal = self.legal_choices(decisions)
            decisions.append(legal[int(rng.integers(len(legal)))])
        return tuple(decisions)

    def mutate(self, decisions: Sequence[int], rng: np.random.Generator) -> Decisions:
        """Change one decision (Real et al. 2019); later ones resampled where no longer legal."""
        decisions = self.validate(decisions)
        mutable = self._mutable_steps(decisions)
        step = mutable[int(rng.integers(len(mutable)))]
        others = [c for c in self.legal_choices(decisions[:step]) if c != decisions[step]]
        return self._repair(decisions, step, others[int(rng.integers(len(others)))], rng)

    def all_cells(self) -> list[Decisions]:
        """Every architecture of the space, depth first (``size`` of them: small spaces only)."""
        cells: list[Decisions] = [()]
        for _ in range(self.num_decisions):
            cells = [(*prefix, c) for prefix in cells for c in self.legal_choices(prefix)]
        return cells

    def neighbours(self, decisions: Sequence[int], rng: np.random.Generator) -> list[Decisions]:
        """Every architecture one decision away, in a random order, repaired as in :meth:`mutate`."""
        decisions = self.validate(decisions)
        found = [self._repair(decisions, step, choice, rng) for step in self._mutable_steps(decisions)
                 for choice in self.legal_choices(decisions[:step]) if choice != decisions[step]]
        return [found[i] for i in rng.permutation(len(found))]

    def _mutable_steps(self, decisions: Decisions) -> list[int]:
        return [s for s in range(self.num_decisions) if len(self.legal_choices(decisions[:s])) > 1]

    def _repair(self, decisions: Decisions, step: int, choice: int, rng: np.random.Generator) -> Decisions:
        """``decisions`` with ``step`` set to ``choice``, later ones resampled where no longer legal."""
        changed = [*decisions[:step], choice, *decisions[step + 1:]]
        for later in range(step + 1, self.num_decisions):
            legal = self.legal_choices(changed[:later])
            if changed[later] not in legal:
                changed[later] = legal[int(rng.integers(len(legal)))]
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
