"""What a finished episode earns: the score, or the score weighed against a cost.

The store keeps raw evaluations, so a search under another reward reuses every one.

* ``accuracy``: the score itself.
* ``constrained``: MnasNet's (Tan et al. 2019) ``score * prod (cost / target) ** w``; with
  ``w = -0.07`` a cell twice the target loses about 5 %. ``hard: true``: over any target earns 0.
* ``scalarized``: ``score - sum weight * cost / scale``, each cost in units of its ``scale``.

A failed evaluation earns its score under every reward: it has no cost to weigh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rlnas.core.settings import POSITIVE, Component, Range, check, configured, setting


@dataclass
class RewardConfig(Component):
    """A reward's settings (the ``reward`` config group)."""

    group: ClassVar[str] = "reward"
    kind: ClassVar[str] = "reward"


class Reward:
    """The evaluator's score, unchanged (``reward=accuracy``)."""

    Config: ClassVar[type[RewardConfig]] = RewardConfig
    name = "accuracy"
    metrics: tuple[str, ...] = ()  # the cost metrics it reads

    def __init__(self, *, config: RewardConfig | None = None, **settings: Any):
        self.config = configured(type(self).Config, config, {"name": self.name, **settings})

    def __call__(self, score: float, metrics: Mapping[str, Any]) -> float:
        return score

    def _costs(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        missing = [m for m in self.metrics if m not in metrics]
        if missing:
            raise ValueError(f"reward {self.name!r} weighs metric(s) {missing}, which the evaluator does not "
                             f"report; it reports {sorted(metrics)}")
        return {m: float(metrics[m]) for m in self.metrics}


@dataclass
class ConstrainedConfig(RewardConfig):
    target: dict[str, float] = setting({"params": 5e5}, "metric -> its target (MnasNet's T); any metric the "
                                                        "evaluator reports")
    hard: bool = setting(True, "a cell over any target earns 0, one within all of them its score: the most "
                               "accurate cell within the budget; false: MnasNet's soft reward")
    w: float = setting(-0.07, "hard=false: the exponent of (cost / target), on both sides of the target", Range(high=0))

    def validate(self) -> None:
        if not self.target:
            raise ValueError("reward 'constrained' needs at least one target, e.g. reward.target.params=5e5")
        check("reward", {f"target.{m}": v for m, v in self.target.items()},
              {f"target.{m}": POSITIVE for m in self.target})


class Constrained(Reward):
    Config = ConstrainedConfig
    name = "constrained"
    # The product (and the hard cut to 0) rank cells only when scores are >= 0.
    NEEDS = ("reward 'constrained' multiplies the score by a cost factor (MnasNet), which needs "
             "scores >= 0; a loss (evaluator.optimize_mode=minimize) scores -value: use reward=scalarized")

    def __init__(self, target: Mapping[str, float] | None = None, *, config: ConstrainedConfig | None = None,
                 **settings: Any):
        if target is not None:
            settings["target"] = dict(target)
        super().__init__(config=config, **settings)
        c = self.config
        self.target, self.w, self.hard = {m: float(v) for m, v in c.target.items()}, float(c.w), c.hard
        self.metrics = tuple(self.target)

    def __call__(self, score: float, metrics: Mapping[str, Any]) -> float:
        if "failed" in metrics:
            return score
        if score < 0:
            raise ValueError(f"{self.NEEDS}; got score {score:g}")
        if self.hard:
            return score if self.meets(metrics) else 0.0
        factor = 1.0
        for metric, cost in self._costs(metrics).items():
            factor *= (cost / self.target[metric]) ** self.w
        return score * factor

    def meets(self, metrics: Mapping[str, Any]) -> bool:
        return all(cost <= self.target[m] for m, cost in self._costs(metrics).items())

    def none_meets(self, evaluated: list[Mapping[str, Any]]) -> str | None:
        """Why no evaluated cell is within the targets (None when one is): the cheapest found."""
        evaluated = [m for m in evaluated if "failed" not in m]
        if not evaluated or any(self.meets(m) for m in evaluated):
            return None
        cheapest = ", ".join(f"{m}={min(float(e[m]) for e in evaluated):g}" for m in self.metrics)
        targets = ", ".join(f"{m} <= {t:g}" for m, t in self.target.items())
        effect = "every cell earned 0 (hard: true)" if self.hard else "cells were ranked by how far over it they are"
        return f"no evaluated cell meets {targets}: the cheapest evaluated costs {cheapest}; {effect}"


@dataclass
class ScalarizedConfig(RewardConfig):
    weights: dict[str, float] = setting({"params": 0.05}, "metric -> how much score one `scale` of it is worth")
    scales: dict[str, float] = setting({"params": 1e6}, "metric -> the cost that counts as one (NB201's largest "
                                                         "cell: 1.53e6 parameters)")

    def validate(self) -> None:
        weights, scales = self.weights, self.scales
        if not weights or set(weights) != set(scales):
            raise ValueError(f"reward 'scalarized' needs a weight and a scale for each cost metric, and the "
                             f"same metrics in both; got weights {dict(weights)}, scales {dict(scales)}")
        check("reward", {f"scales.{m}": v for m, v in scales.items()}, {f"scales.{m}": POSITIVE for m in scales})
        check("reward", {f"weights.{m}": v for m, v in weights.items()}, {f"weights.{m}": Range(0) for m in weights})


class Scalarized(Reward):
    Config = ScalarizedConfig
    name = "scalarized"

    def __init__(self, weights: Mapping[str, float] | None = None, scales: Mapping[str, float] | None = None, *,
                 config: ScalarizedConfig | None = None, **settings: Any):
        settings.update({k: dict(v) for k, v in (("weights", weights), ("scales", scales)) if v is not None})
        super().__init__(config=config, **settings)
        self.weights = {m: float(v) for m, v in self.config.weights.items()}
        self.scales = {m: float(v) for m, v in self.config.scales.items()}
        self.metrics = tuple(self.weights)

    def __call__(self, score: float, metrics: Mapping[str, Any]) -> float:
        if "failed" in metrics:
            return score
        costs = self._costs(metrics)
        return score - sum(self.weights[m] * costs[m] / self.scales[m] for m in self.metrics)
