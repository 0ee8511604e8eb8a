"""Any evaluator behind the durable store: evaluations are never paid for twice."""

from __future__ import annotations

import dataclasses
import math

from rlnas.core.store import Evaluation, EvaluationStore
from rlnas.evaluators.base import Evaluator


class StoredEvaluator:
    """Repeated architectures are answered from the store (``cached=True``) and never paid
    for twice; new ones are committed at once, tagged with ``run``.

    A failed evaluation (``metrics["failed"]``: a crashed trial, a dead worker, a diverged
    supernet) is stored as its evaluator gave it, and answered with the lowest score a real
    one has earned under this evaluator so far. A fixed score would be the best of all
    wherever scores are negative (a loss minimised, say), and an agent would learn to make
    trials crash; the lowest seen never pays a failure more than a result already in, on
    any scale, and the store makes it the same after a resume. Before any result is in
    there is no scale to go by and a failure is answered with 0; the search driver holds a
    proposing agent's failures back until a result is in (:mod:`rlnas.search.driver`).
    """

    def __init__(self, evaluator: Evaluator, store: EvaluationStore, run: str | None = None):
        self.inner, self.store, self.run = evaluator, store, run
        self.space, self.fingerprint = evaluator.space, evaluator.fingerprint

    def evaluate(self, arch: str) -> Evaluation:
        evaluation = self.lookup(arch)
        if evaluation is None:
            evaluation = self.record(self.inner.evaluate(arch))
        if "failed" in evaluation.metrics:  # read from the store, which every worker and env writes
            return dataclasses.replace(evaluation, score=self.lowest())
        return evaluation

    def lowest(self) -> float:
        """The lowest real score stored under this evaluator (0 before any)."""
        return min((e.score for e in self.store.history(self.fingerprint) if "failed" not in e.metrics), default=0.0)

    def has_result(self) -> bool:
        """Whether a real (not failed) score is stored under this evaluator."""
        return any("failed" not in e.metrics for e in self.store.history(self.fingerprint))

    def lookup(self, arch: str) -> Evaluation | None:
        """The stored evaluation of ``arch`` under this evaluator's fingerprint, if any."""
        return self.store.get(self.fingerprint, arch)

    def record(self, evaluation: Evaluation) -> Evaluation:
        """Commit an evaluation (paid for here, or by a parallel worker) as this run's, and
        return it as stored: a score of nan or inf is a failed evaluation, never a row lost
        (SQLite keeps no nan) nor a reward that would poison an agent's gradients."""
        if "failed" not in evaluation.metrics and not math.isfinite(evaluation.score):
            evaluation = dataclasses.replace(evaluation, score=-math.inf, metrics={
                **evaluation.metrics, "failed": f"score {evaluation.score!r} is not a finite number"})
        self.store.put(self.fingerprint, evaluation, self.run)
        return evaluation

    def close(self) -> None:
        self.inner.close()
