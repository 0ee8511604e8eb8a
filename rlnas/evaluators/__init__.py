"""Evaluators turn an architecture string into a score, one backend per module:

* ``tabular`` / ``nats``: NAS-Bench-201 scores from a table (:mod:`.tabular`).
* ``scratch``: train the child network on a dataset (:mod:`.scratch`).
* ``supernet``: a weight-sharing supernet on a worker of its own (:mod:`.supernet`).
* ``function``: the user's Python function (:mod:`.function`).
* ``trial``: the user's training script, once per evaluation (:mod:`.trial`).

:class:`~rlnas.evaluators.stored.StoredEvaluator` puts any of them behind the durable store.
"""

from rlnas.evaluators.base import Evaluator, EvaluatorConfig, Objective
from rlnas.evaluators.function import CallableEvaluator
from rlnas.evaluators.scratch import ScratchEvaluator
from rlnas.evaluators.stored import StoredEvaluator
from rlnas.evaluators.supernet import SupernetEvaluator
from rlnas.evaluators.tabular import NATSBenchEvaluator, TabularEvaluator
from rlnas.evaluators.trial import TrialEvaluator

__all__ = ["CallableEvaluator", "Evaluator", "EvaluatorConfig", "NATSBenchEvaluator", "Objective",
           "ScratchEvaluator", "StoredEvaluator", "SupernetEvaluator", "TabularEvaluator", "TrialEvaluator"]
