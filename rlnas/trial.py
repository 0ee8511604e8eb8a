"""The trial API: your own training script as one evaluation, called as NNI's trial code calls it.

    from rlnas import trial

    params = trial.get_next_parameter()          # {"lr": 0.01, "batch_size": 64, ...}
    for epoch in range(params.get("epochs", 10)):
        accuracy = train_one_epoch(params)
        trial.report_intermediate_result(accuracy)
    trial.report_final_result(accuracy)

The runner hands the parameters in ``RLNAS_PARAMETERS`` and a result file in
``RLNAS_RESULT_FILE`` (one JSON line per report; nothing goes over a network). Outside a
search ``get_next_parameter()`` returns ``{}`` and reports are printed. Standard library
only, so a trial starts fast.
"""

from __future__ import annotations

import json
import os
import signal
from functools import cache
from typing import Any

from rlnas.core import lifeline

PARAMETERS, RESULT_FILE, TRIAL_ID, SEED = "RLNAS_PARAMETERS", "RLNAS_RESULT_FILE", "RLNAS_TRIAL_ID", "RLNAS_SEED"
SEQUENCE_ID, EXPERIMENT_ID = "RLNAS_SEQUENCE_ID", "RLNAS_EXPERIMENT_ID"
PARENT = "RLNAS_PARENT_PID"  # the process running the evaluation: the trial ends when it does


def get_next_parameter() -> dict[str, Any]:
    """This trial's parameters, as the search space's dict (``{}`` outside a search)."""
    _end_with_the_search()
    return json.loads(os.environ.get(PARAMETERS, "{}"))


def get_current_parameter(tag: str | None = None) -> Any:
    """NNI's: the parameters :func:`get_next_parameter` returned, or the one named ``tag``."""
    parameters = get_next_parameter()
    return parameters if tag is None else parameters[tag]


def get_trial_id() -> str | None:
    """This trial's id (the name of its working directory), or None outside a search."""
    return os.environ.get(TRIAL_ID)


def get_sequence_id() -> int | None:
    """This trial's index in the run (0, 1, 2, ... as trials start), or None outside a search."""
    return None if SEQUENCE_ID not in os.environ else int(os.environ[SEQUENCE_ID])


def get_experiment_id() -> str | None:
    """The run's id (as the store names its rows), or None outside a search."""
    return os.environ.get(EXPERIMENT_ID) or None


def report_intermediate_result(value: float | dict[str, Any]) -> None:
    """A score along the way (per epoch, say): what early stopping reads."""
    _report("intermediate", value)


def report_final_result(value: float | dict[str, Any]) -> None:
    """The trial's result (the last one counts): a score, or a loss under ``optimize_mode=minimize``."""
    _report("final", value)


@cache
def _end_with_the_search() -> None:
    """Kill the trial's process group once the evaluating process is gone."""
    if PARENT in os.environ:
        lifeline.watch(int(os.environ[PARENT]), lambda: os.killpg(os.getpgrp(), signal.SIGKILL))


def _report(kind: str, value: float | dict[str, Any]) -> None:
    _end_with_the_search()
    score = value.get("default") if isinstance(value, dict) else value
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise TypeError(f"report_{kind}_result needs a number, or a dict whose 'default' is one; got {value!r}")
    line = json.dumps({"type": kind, "value": value})
    path = os.environ.get(RESULT_FILE)
    if path is None:
        print(f"rlnas.trial: {kind} result {value!r} (not in a search: nothing is recorded)")
        return
    with open(path, "a") as results:  # one line per write: a crash mid-trial keeps what came before
        results.write(line + "\n")
        results.flush()
