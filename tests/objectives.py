"""Objectives for ``evaluator=function`` in tests: importable by train.py subprocesses."""

import functools
import json
import os
import signal
import time
from pathlib import Path

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


def sleepy_table_score(arch: str) -> float:
    """The table's validation accuracy after 0.2 s: long enough to find evaluations in flight."""
    time.sleep(0.2)
    return _TABLE.evaluate(arch).score


def dies_once(arch: str) -> float:
    """SIGKILLs its own process the first time it is called (the file named by
    ``RLNAS_TEST_MARKER`` remembers), then scores from the table."""
    marker = Path(os.environ["RLNAS_TEST_MARKER"])
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return _TABLE.evaluate(arch).score


def dies_on_none_first(arch: str) -> float:
    """SIGKILLs its own process for cells whose first edge is ``none``: a worker that
    dies every time it is given them."""
    if arch.startswith("|none~0|"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _TABLE.evaluate(arch).score


def table_score_noting_pid(arch: str) -> float:
    """The table's validation accuracy; appends the evaluating process's PID to the file
    named by ``RLNAS_TEST_MARKER``, to show where evaluations ran."""
    with open(os.environ["RLNAS_TEST_MARKER"], "a") as f:
        f.write(f"{os.getpid()}\n")
    return _TABLE.evaluate(arch).score


def learning_rate_bowl(params: dict) -> float:
    """A hyperparameter objective with a known best point: lr 1e-2, batch 64, sgd with
    momentum 0.9 (see tests/test_hpo.py's space); 1.0 there, less elsewhere."""
    import math

    score = 1.0 - abs(math.log10(params["lr"]) + 2) / 3 - (params["batch_size"] != 64) * 0.1
    optimizer = params["optimizer"]
    return score - (0.2 if optimizer["_name"] != "sgd" else abs(optimizer["momentum"] - 0.9) / 10)


def fails_above_half(params: dict) -> float:
    """``x`` itself, and an exception for ``x > 0.5``: a configuration that cannot train."""
    if params["x"] > 0.5:
        raise RuntimeError(f"CUDA out of memory (pretend) at x={params['x']}")
    return params["x"]


def nan_above_half(params: dict) -> float:
    """``x`` itself, and nan for ``x > 0.5``: a training run that diverged."""
    return float("nan") if params["x"] > 0.5 else params["x"]



@functools.cache
def _recorded_svc() -> dict[str, float]:
    fixture = json.loads((Path(__file__).parent / "fixtures" / "sequences.json").read_text())
    return {arch: score for variants in fixture["hpo_svc"].values() for run in variants for arch, score in run}


def recorded_svc_score(params: dict) -> float:
    """The SVC example's validation accuracy as recorded in ``tests/fixtures/sequences.json``
    (by any agent's run), so that replaying a search trains nothing; a point never recorded
    raises, which fails that evaluation and shows that the replay has left the recording."""
    return _recorded_svc()[json.dumps(params, sort_keys=True, separators=(",", ":"))]


def untrained_accuracy(model, data, device) -> dict:
    """A model-space network's validation accuracy untrained: cheap, and it differs by
    architecture (a training function of the user's kind, without the training)."""
    import torch

    with torch.no_grad():
        model.eval()
        val = (model(data.valid.x.to(device)).argmax(1) == data.valid.y.to(device)).float().mean().item()
    return {"default": val, "params": sum(p.numel() for p in model.parameters())}


def slow_untrained_accuracy(model, data, device) -> dict:
    time.sleep(0.05)  # a SIGKILL lands mid-search
    return untrained_accuracy(model, data, device)


def no_number(model, data, device) -> str:
    return "high"
