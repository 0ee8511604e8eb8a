"""What every evaluator is: architectures in, scores + metrics + cost out. ``fingerprint``
names what a score means (the store keys by it); ``costs`` names the cost metrics reported
(None where the user's code decides)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

from rlnas.core.context import RunContext
from rlnas.core.settings import Component, OneOf, check, configured, setting
from rlnas.core.store import Evaluation
from rlnas.spaces import SearchSpace

OPTIMIZE_MODES = ("maximize", "minimize")


@dataclass
class EvaluatorConfig(Component):
    """An evaluator's settings (the ``evaluator`` config group)."""

    group: ClassVar[str] = "evaluator"
    kind: ClassVar[str] = "evaluator"


class Evaluator(ABC):
    """Made for one search space, with its settings and the run it serves."""

    Config: ClassVar[type[EvaluatorConfig]] = EvaluatorConfig
    name: ClassVar[str] = ""
    costs: tuple[str, ...] | None = ()
    fingerprint: str

    def __init__(self, space: SearchSpace | None = None, *, config: EvaluatorConfig | None = None,
                 run: RunContext | None = None, **settings: Any):
        self.config = configured(type(self).Config, config, {"name": self.name, **settings})
        self.space, self.run = self.check_space(space), run or RunContext()

    def check_space(self, space: SearchSpace | None) -> SearchSpace:
        """The space this evaluator scores; one it cannot score is refused, by name."""
        if space is None:
            raise ValueError(f"the {self.name} evaluator needs the search space it scores")
        return space

    @abstractmethod
    def evaluate(self, arch: str) -> Evaluation:
        """Score one architecture, given as the space's canonical string."""

    def close(self) -> None:
        """Release workers, files and devices."""
        return None


class Objective:
    """NNI's ``optimize_mode`` for evaluators that score with the user's own value: the
    search always maximises its score, so under ``"minimize"`` (a loss, an error) the score
    is ``-value`` and ``metrics["value"]`` keeps the value as reported."""

    def __init__(self, owner: str, optimize_mode: str, what: str):
        check(owner, {"optimize_mode": optimize_mode}, {"optimize_mode": OneOf(OPTIMIZE_MODES)})
        self.sign = -1.0 if optimize_mode == "minimize" else 1.0
        self.suffix = ":minimize" if self.sign < 0 else ""  # the store keeps the two apart
        self.what = what  # what the value is, for the message when it is not a number

    def evaluation(self, arch: str, value: Any, metrics: dict, cost: float) -> Evaluation:
        """A number, or metrics with ``"default"``; anything else, nan or inf, a failed evaluation."""
        if isinstance(value, dict):
            metrics = {**metrics, **{k: v for k, v in value.items() if k != "default"}}
        value = default_value(value)
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            return failed(arch, f"{self.what} is {value!r}, not a finite number", metrics, cost)
        if self.sign < 0:
            metrics = {**metrics, "value": float(value)}
        return Evaluation(arch, self.sign * float(value) + 0.0, metrics, cost=cost)  # + 0.0: no -0.0


def optimize_mode() -> Any:
    """The ``optimize_mode`` setting of evaluators that score with the user's own value."""
    return setting("maximize", "maximize the value, or minimize it (a loss): the score is then -value, as NNI's",
                   OneOf(OPTIMIZE_MODES))


def failed(arch: str, why: str, metrics: dict | None = None, cost: float = 0.0) -> Evaluation:
    """An evaluation with no score: -inf (the store answers it with the lowest real one)."""
    return Evaluation(arch, -math.inf, {**(metrics or {}), "failed": why}, cost=cost)


def default_value(value: Any) -> Any:
    """A result as NNI's trial API reports it: a number, or a dict of metrics with it as ``"default"``."""
    return value.get("default") if isinstance(value, dict) else value
