"""Schedulers: early stopping of trials from their intermediate results (NNI's assessors,
Ray Tune's ``TrialScheduler``): the agent proposes, the scheduler stops, the evaluator runs.

A rule is asked after every intermediate report whether to stop a trial, given its
``curve`` and the ``others``' ``(trial id, values, completed)``.

* :class:`FIFO` (the default): every trial runs to its end.
* :class:`MedianStopping` (Golovin et al. 2017; NNI's Medianstop): stop a trial whose best
  value is below the median of completed trials' running averages at the same step.
* :class:`SuccessiveHalving` (ASHA, Li et al. 2020, with Hyperband's brackets): at each rung
  ``min_resource * eta ** k``, stop a trial below the ``1 - 1/eta`` quantile of its
  bracket's values there; bracket ``b`` starts at ``min_resource * eta ** b``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, ClassVar

import numpy as np

from rlnas.core.settings import INT_AT_LEAST_1, Component, Range, configured, setting

Curve = tuple[str, Sequence[float], bool]  # (trial id, values so far, completed)


@dataclass
class SchedulerConfig(Component):
    """A scheduler's settings (the ``scheduler`` config group)."""

    group: ClassVar[str] = "scheduler"
    kind: ClassVar[str] = "scheduler"


class FIFO:
    """Every trial runs to its end."""

    Config: ClassVar[type[SchedulerConfig]] = SchedulerConfig
    name = "fifo"

    def __init__(self, *, config: SchedulerConfig | None = None, **settings: Any):
        self.config = configured(type(self).Config, config, {"name": self.name, **settings})

    def should_stop(self, curve: Sequence[float], others: Sequence[Curve], trial_id: str = "") -> bool:
        """Whether to stop the trial ``trial_id`` whose values so far are ``curve``."""
        return False


@dataclass
class MedianConfig(SchedulerConfig):
    start_step: int = setting(1, "reports before a trial may be stopped", INT_AT_LEAST_1)


class MedianStopping(FIFO):
    """Stop below the median of completed trials' running averages, from ``start_step``."""

    Config = MedianConfig
    name = "median"

    def should_stop(self, curve: Sequence[float], others: Sequence[Curve], trial_id: str = "") -> bool:
        """``trial_id`` is not read: the rule treats every trial alike."""
        step = len(curve)
        if step < self.config.start_step:
            return False
        averages = [float(np.mean(values[:step])) for _, values, completed in others
                    if completed and len(values) >= step]
        return bool(averages) and max(curve) < median(averages)


@dataclass
class HyperbandConfig(SchedulerConfig):
    min_resource: int = setting(1, "steps at the first rung", INT_AT_LEAST_1)
    eta: int = setting(3, "rungs are eta times apart; the top 1/eta of a rung goes on", Range(2, integer=True))
    brackets: int = setting(1, "Hyperband's brackets (1: asynchronous successive halving)", INT_AT_LEAST_1)


class SuccessiveHalving(FIFO):
    """ASHA; ``brackets > 1`` spreads trials over Hyperband's brackets by trial id."""

    Config = HyperbandConfig
    name = "hyperband"

    def __init__(self, *, config: HyperbandConfig | None = None, **settings: Any):
        super().__init__(config=config, **settings)
        self.min_resource, self.eta, self.brackets = self.config.min_resource, self.config.eta, self.config.brackets

    def bracket(self, trial_id: str) -> int:
        return int(hashlib.sha256(trial_id.encode()).hexdigest(), 16) % self.brackets

    def is_rung(self, step: int, bracket: int) -> bool:
        rung = self.min_resource * self.eta ** bracket
        while rung < step:
            rung *= self.eta
        return rung == step

    def should_stop(self, curve: Sequence[float], others: Sequence[Curve], trial_id: str = "") -> bool:
        step = len(curve)
        bracket = self.bracket(trial_id)
        if step == 0 or not self.is_rung(step, bracket):
            return False
        at_rung = [values[step - 1] for other, values, _ in others
                   if len(values) >= step and self.bracket(other) == bracket] + [curve[-1]]
        return curve[-1] < float(np.quantile(at_rung, 1 - 1 / self.eta))
