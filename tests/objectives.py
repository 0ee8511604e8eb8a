"""Objectives for ``evaluator=function`` in tests: importable by train.py subprocesses."""

import time

from rlnas.evaluators import TabularEvaluator

_TABLE = TabularEvaluator()


def slow_table_score(arch: str) -> float:
    """The table's validation accuracy, made to take 10 ms like a (very) fast evaluation."""
    time.sleep(0.01)
    return _TABLE.evaluate(arch).score


def nasnet_sep_conv_share(arch: str) -> float:
    """Fraction of NASNet ops that are sep_conv_3x3: a cheap objective with a known optimum."""
    ops = [part.split("~")[0] for block in arch.replace(";", "|").split("|") for part in block.split(",")[:2]]
    return sum(op.endswith("sep_conv_3x3") for op in ops) / len(ops)
