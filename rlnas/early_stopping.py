"""Early stopping of trials from their intermediate results (NNI's "assessors").

A rule is asked after every intermediate report of a running trial (``curve``: its values so
far, one per step, e.g. per epoch) whether to stop it, given the curves of the other trials
of the run (``others``: ``(trial id, values, completed)``; stopped, failed and running ones
are not completed). :class:`~rlnas.evaluators.TrialEvaluator` reads those curves from the trials'
result files, so rules see every worker's trials on one machine.

* :class:`MedianStopping` (Golovin et al. 2017, Google Vizier; NNI's ``Medianstop``): stop
  a trial whose best value so far is below the median, over completed trials, of their
  running averages up to the same step.
* :class:`SuccessiveHalving` (asynchronous successive halving, Li et al. 2020, with
  Hyperband's brackets): at each rung ``min_resource * eta ** k`` steps, stop a trial whose
  value is below the ``1 - 1/eta`` quantile of the values every trial reported at that
  rung by the trials of its bracket, itself included; bracket ``b`` starts its rungs at
  ``min_resource * eta ** b``.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from statistics import median

import numpy as np

from rlnas.ranges import INT_AT_LEAST_1, Range, check

Curve = tuple[str, Sequence[float], bool]  # (trial id, values so far, completed)


class MedianStopping:
    """Stop below the median of completed trials' running averages; never before
    ``start_step`` reports."""

    def __init__(self, start_step: int = 1):
        check("early_stopping (median)", {"start_step": start_step}, {"start_step": INT_AT_LEAST_1})
        self.start_step = start_step

    def should_stop(self, curve: Sequence[float], others: Sequence[Curve], trial_id: str = "") -> bool:
        """``trial_id`` is not read: the rule treats every trial alike."""
        step = len(curve)
        if step < self.start_step:
            return False
        averages = [float(np.mean(values[:step])) for _, values, completed in others
                    if completed and len(values) >= step]
        return bool(averages) and max(curve) < median(averages)


class SuccessiveHalving:
    """Asynchronous successive halving; ``brackets > 1`` spreads trials over Hyperband's
    brackets (by trial id, so a trial run again lands in the same one)."""

    def __init__(self, min_resource: int = 1, eta: int = 3, brackets: int = 1):
        check("early_stopping (hyperband)", {"min_resource": min_resource, "eta": eta, "brackets": brackets}, {
            "min_resource": INT_AT_LEAST_1, "eta": Range(2, integer=True), "brackets": INT_AT_LEAST_1})
        self.min_resource, self.eta, self.brackets = min_resource, eta, brackets

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


RULES = {"median": MedianStopping, "hyperband": SuccessiveHalving}


def make_rule(settings: dict | None) -> MedianStopping | SuccessiveHalving | None:
    """The rule ``settings["rule"]`` with the rest of ``settings`` (None: run every trial
    to its end)."""
    if settings is None:
        return None
    settings = dict(settings)
    rule = settings.pop("rule", None)
    if rule not in RULES:
        raise ValueError(f"unknown early_stopping.rule {rule!r}; choose from {', '.join(RULES)} "
                         "(or early_stopping=null)")
    takes = list(inspect.signature(RULES[rule]).parameters)
    unknown = sorted(set(settings) - set(takes))
    if unknown:
        raise ValueError(f"early_stopping rule {rule!r} takes {', '.join(takes)}; got {unknown[0]!r}")
    return RULES[rule](**settings)

