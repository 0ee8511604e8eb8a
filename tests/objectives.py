"""Objectives for ``evaluator=function`` in tests: importable by train.py subprocesses."""

import time

from rlnas.evaluators import TabularEvaluator

_TABLE = TabularEvaluator()


def slow_table_score(arch: str) -> float:
    """The table's validation accuracy, made to take 10 ms like a (very) fast evaluation."""
    time.sleep(0.01)
    return _TABLE.evaluate(arch).score
