"""Any evaluator behind the durable store: evaluations are never paid for twice."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from rlnas.core.store import Evaluation, EvaluationStore
from rlnas.evaluators.base import Evaluator


class StoredEvaluator:
    """Repeats are answered from the store (``cached=True``), never paid for twice; new
    evaluations are committed at once, tagged with ``run``.

    A failure is answered with the lowest real score seen under this evaluator: a fixed
    score would be the best of all where scores are negative (a minimised loss), and an
    agent would learn to crash trials. Before any result there is no scale to place it on, and
    it keeps its -inf: the env cuts such an episode unscored (``truncated``, reward 0), and
    proposing agents hold such failures back until a result is in.

    ``watch`` sees each new evaluation once it is committed (the run's fail-fast rule).
    """

    def __init__(self, evaluator: Evaluator, store: EvaluationStore, run: str | None = None,
                 watch: Callable[[Evaluation], None] | None = None):
        self.inner, self.store, self.run, self.watch = evaluator, store, run, watch
        self.space, self.fingerprint = evaluator.space, evaluator.fingerprint

    def evaluate(self, arch: str) -> Evaluation:
        evaluation = self.lookup(arch)
        if evaluation is None:
            evaluation = self.record(self.inner.evaluate(arch))
        if "failed" in evaluation.metrics:  # read from the store, which every worker and env writes
            return dataclasses.replace(evaluation, score=self.lowest())
        return evaluation

    def lowest(self) -> float:
        """The lowest real score stored under this evaluator (-inf before any)."""
        return min((e.score for e in self.store.history(self.fingerprint) if "failed" not in e.metrics),
                   default=-math.inf)

    def lookup(self, arch: str) -> Evaluation | None:
        """The stored evaluation of ``arch`` under this evaluator's fingerprint, if any."""
        return self.store.get(self.fingerprint, arch)

    def record(self, evaluation: Evaluation, retried: bool = False) -> Evaluation:
        """Commit an evaluation as this run's (a nan or inf score as a failed one; ``retried``: in
        place of the failure it ran again); return it."""
        if "failed" not in evaluation.metrics and not math.isfinite(evaluation.score):
            evaluation = dataclasses.replace(evaluation, score=-math.inf, metrics={
                **evaluation.metrics, "failed": f"score {evaluation.score!r} is not a finite number"})
        self.store.put(self.fingerprint, evaluation, self.run, replace=retried)
        if self.watch is not None:
            self.watch(evaluation)
        return evaluation

    def failures(self) -> list[str]:
        """The architectures this run's failed evaluations are of, oldest first."""
        return [e.arch for e in self.store.history(self.fingerprint, run=self.run) if "failed" in e.metrics]

    def close(self) -> None:
        self.inner.close()
