"""A trial script for tests/test_trial.py that does what its parameters say: report
``x`` (mode ok), crash, hang, or exit without a final result."""

import json
import os
import sys
import time
from pathlib import Path

from rlnas import trial

params = trial.get_next_parameter()
if os.environ.get("RLNAS_TEST_PIDFILE"):  # where a test looks for this process once the search has ended
    with open(os.environ["RLNAS_TEST_PIDFILE"], "a") as pids:
        pids.write(f"{os.getpid()}\n")
mode, x, epochs = params.get("mode", "ok"), params.get("x", 0.5), params.get("epochs", 3)
for epoch in range(epochs):  # a learning curve rising to x
    trial.report_intermediate_result(x * (epoch + 1) / epochs)
    time.sleep(float(os.environ.get("RLNAS_TEST_EPOCH_SECONDS", 0)))
if mode == "crash":
    print("boom: the trial crashed", file=sys.stderr)
    sys.exit(3)
if mode == "hang":
    time.sleep(600)
if mode == "ok":
    Path("seen.json").write_text(json.dumps({"params": params, "seed": os.environ.get("RLNAS_SEED"),
                                             "trial_id": trial.get_trial_id(), "cwd": os.getcwd()}))
    if os.environ.get("RLNAS_TEST_SLOW"):
        time.sleep(float(os.environ["RLNAS_TEST_SLOW"]))
    trial.report_final_result({"default": x, "epochs": 3})
    time.sleep(float(os.environ.get("RLNAS_TEST_LINGER", 0)))  # alive after its result, as interpreters are
