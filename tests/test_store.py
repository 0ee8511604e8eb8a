import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rlnas.core.store import Evaluation, EvaluationStore
from rlnas.evaluators import CallableEvaluator, StoredEvaluator, TabularEvaluator
from rlnas.evaluators.base import failed


def test_put_get_and_reopen(tmp_path):
    path = tmp_path / "run" / "evaluations.sqlite"
    store = EvaluationStore(path)
    store.put("fp", Evaluation("a", 0.5, {"test_acc": 0.4}, cost=2.0))
    store.put("fp", Evaluation("a", 0.9))  # never overwritten: the first evaluation stands
    store.put("other", Evaluation("a", 0.1))
    assert store.get("fp", "a") == Evaluation("a", 0.5, {"test_acc": 0.4}, 2.0, cached=True)
    assert store.get("fp", "b") is None
    store.close()
    again = EvaluationStore(path)
    assert len(again) == 2
    assert [e.score for e in again.history("fp")] == [0.5]
    assert [e.arch for e in again.history()] == ["a", "a"]


def test_stored_evaluator_never_pays_twice(tmp_path, nb201):
    calls = []

    def score(arch):
        calls.append(arch)
        return len(calls)

    evaluator = StoredEvaluator(CallableEvaluator(nb201, score), EvaluationStore(tmp_path / "s.db"))
    first = evaluator.evaluate("x")
    second = evaluator.evaluate("x")
    assert calls == ["x"] and not first.cached and second.cached and second.score == first.score == 1
    # a second run sharing the store file gets the answer for free as well
    shared = StoredEvaluator(CallableEvaluator(nb201, score), EvaluationStore(tmp_path / "s.db"))
    assert shared.evaluate("x").cached and calls == ["x"]


class Scripted(CallableEvaluator):
    """Answers from a dict; ``None`` is a failed evaluation, as a crashed trial gives."""

    def __init__(self, space, answers):
        super().__init__(space, lambda arch: answers[arch], label="scripted")

    def evaluate(self, arch):
        if self.fn(arch) is None:
            return failed(arch, "trial exited with code 1")
        return super().evaluate(arch)


def test_a_failed_evaluation_earns_the_lowest_score_seen(tmp_path, nb201):
    store = EvaluationStore(tmp_path / "s.db")
    answers = {"crash-1": None, "a": -0.5, "b": -0.2, "crash-2": None, "c": -0.9}
    evaluator = StoredEvaluator(Scripted(nb201, answers), store)
    store.put("another evaluator", Evaluation("z", -5.0))  # not this objective's
    assert evaluator.evaluate("crash-1").score == -math.inf  # nothing has succeeded yet: no scale to place it on
    assert [evaluator.evaluate(a).score for a in ("a", "b", "crash-2")] == [-0.5, -0.2, -0.5]
    evaluator.evaluate("c")
    again = evaluator.evaluate("crash-1")  # a repeat is answered from the store, at today's lowest
    assert again.cached and again.score == -0.9 and again.metrics["failed"] == "trial exited with code 1"
    assert store.get(evaluator.fingerprint, "crash-2").score == -math.inf  # stored as the evaluator gave it: below all


def test_a_nan_score_is_stored_as_a_failure_not_lost(tmp_path, nb201):
    """SQLite turns nan into NULL, which the schema refuses and INSERT OR IGNORE dropped."""
    store = EvaluationStore(tmp_path / "s.db")
    evaluator = StoredEvaluator(CallableEvaluator(nb201, lambda arch: 0.5, label="half"), store)
    stored = evaluator.record(Evaluation("diverged", float("nan"), {"weight_version": 3}))
    assert stored.score == -math.inf and stored.metrics == {"weight_version": 3,
                                                             "failed": "score nan is not a finite number"}
    assert store.get(evaluator.fingerprint, "diverged").metrics["failed"] == "score nan is not a finite number"


def test_not_a_store(tmp_path):
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match=f"{path} is not an rlnas evaluation store"):
        EvaluationStore(path).get("fp", "a")


WORKER = textwrap.dedent("""
    import sys, time
    from rlnas.evaluators import StoredEvaluator, TabularEvaluator
    from rlnas.spaces import NB201Space
    from rlnas.core.store import EvaluationStore
    space = NB201Space()
    evaluator = StoredEvaluator(TabularEvaluator(), EvaluationStore(sys.argv[1]))
    for index in range(15625):
        arch = space.to_string(space.from_index(index))
        evaluator.evaluate(arch)
        print(arch, flush=True)  # reported only once committed
        time.sleep(0.002)
""")


def test_store_survives_sigkill(tmp_path):
    path = tmp_path / "evaluations.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(path)], stdout=subprocess.PIPE, text=True)
    reported = []
    deadline = time.monotonic() + 60
    while len(reported) < 200 and time.monotonic() < deadline:
        reported.append(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reported += [line.strip() for line in proc.stdout if line.strip()]
    assert len(reported) >= 200
    store = EvaluationStore(path)
    stored = [e.arch for e in store.history()]
    assert stored[: len(reported)] == reported  # every finished evaluation, in order
    assert len(stored) <= len(reported) + 1  # at most the one in flight got past its commit
    table = TabularEvaluator()
    for evaluation in store.history():
        assert evaluation.score == table.evaluate(evaluation.arch).score
