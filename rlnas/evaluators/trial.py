"""Score by running the user's own training script, once per evaluation (:mod:`rlnas.trial`)."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlnas import trial
from rlnas.core.settings import MISSING, Range, Text, setting
from rlnas.core.store import Evaluation
from rlnas.evaluators.base import Evaluator, EvaluatorConfig, Objective, default_value, failed, optimize_mode

TRIALS = "trials"  # the run directory's folder of trial directories
NNI_STAND_IN = Path(trial.__file__).parent / "nni_stand_in"  # on a trial's path: its `import nni` is rlnas.trial


@dataclass
class TrialConfig(EvaluatorConfig):
    command: str = setting(MISSING, "the shell command of one trial, run in RUN_DIR/trials/<trial id>; a script "
                                    "it names relative to where the search started is found",
                           Text("a shell command, e.g. evaluator.command='python my_train.py'"))
    optimize_mode: str = optimize_mode()
    timeout: float | None = setting(None, "seconds before a trial is killed and recorded as failed",
                                    Range(0, low_open=True, none_means="no time limit"))
    workdir: str | None = setting(None, "where trials run", Text("a path", none_means="RUN_DIR/trials"))

    def validate(self) -> None:
        if not shlex.split(self.command):
            raise ValueError(f"{self.owner}: command={self.command!r} must be a shell command, "
                             "e.g. evaluator.command='python my_train.py'")


class TrialEvaluator(Evaluator):
    """Run ``command`` once per evaluation in ``workdir/<trial id>`` (docs/hpo.md): it gets
    ``RLNAS_PARAMETERS``, ``RLNAS_RESULT_FILE``, ``RLNAS_TRIAL_ID`` and ``RLNAS_SEED``, and its
    score is its last final result. A crash, a timeout or no final result is a failed
    evaluation (exit code and stderr's tail in ``metrics``). The run's scheduler is asked
    after each intermediate result; a stopped trial scores where it stopped."""

    Config = TrialConfig
    name = "trial"
    costs = None  # whatever the trial reports
    POLL = 0.05  # seconds between looks at a running trial's results

    def __init__(self, space=None, command: str | None = None, *, config: TrialConfig | None = None, run=None,
                 **settings: Any):
        if command is not None:
            settings["command"] = command
        super().__init__(space, config=config, run=run, **settings)
        c = self.config
        self.objective = Objective(c.owner, c.optimize_mode, "the trial's result")
        workdir = c.workdir or self.run.path(TRIALS)
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="rlnas-trials-"))
        self.argv = files_made_absolute(c.command, Path())
        self.scheduler = self.run.scheduler
        self.fingerprint = f"trial:{c.command}{self.objective.suffix}"

    def evaluate(self, arch: str) -> Evaluation:
        trial_id = self.space.arch_hash(arch)  # a trial run again (after a crash) has the same one
        here = self.workdir / trial_id
        shutil.rmtree(here, ignore_errors=True)  # a trial run again (after a crash) starts afresh
        here.mkdir(parents=True)
        parameters = self.space.parameters(arch)
        env = {**os.environ, trial.PARAMETERS: json.dumps({"arch": arch} if parameters is None else parameters),
               trial.RESULT_FILE: str(here / "results.jsonl"), trial.TRIAL_ID: trial_id,
               trial.SEQUENCE_ID: str(next_sequence_id(self.workdir)), trial.EXPERIMENT_ID: self.run.run_id or "",
               trial.SEED: str(self.run.seed), trial.PARENT: str(os.getpid()),
               "PYTHONPATH": os.pathsep.join(filter(None, (str(NNI_STAND_IN), os.environ.get("PYTHONPATH"))))}
        start = time.monotonic()
        code, why, stopped_at = self._run(here, env)
        seconds = time.monotonic() - start
        reports = read_results(here / "results.jsonl")
        intermediate = [r["value"] for r in reports if r["type"] == "intermediate"]
        final = [r["value"] for r in reports if r["type"] == "final"]
        metrics: dict = {"trial_id": trial_id, "exit_code": code, "seconds": round(seconds, 3)}
        if intermediate:
            metrics.update(intermediate=intermediate, resource=len(intermediate))
        if stopped_at is not None and not final:
            return self.objective.evaluation(arch, intermediate[stopped_at - 1], {**metrics, "stopped_at": stopped_at},
                                             cost=seconds)
        # A trial the rule stopped may have reported its final result before the kill landed:
        # it finished, and the kill's exit code says nothing about it.
        why = why or ("reported no final result" if not final else None)
        if why is not None:
            tail = (here / "stderr.log").read_bytes()[-2000:].decode(errors="replace")
            return failed(arch, f"trial {why}", {**metrics, "stderr_tail": tail, "trial_dir": str(here)}, seconds)
        return self.objective.evaluation(arch, final[-1], metrics, cost=seconds)

    def _run(self, here: Path, env: dict[str, str]) -> tuple[int, str | None, int | None]:
        """Run the trial: its exit code, why it failed and where the rule stopped it (None: not)."""
        deadline = None if self.config.timeout is None else time.monotonic() + self.config.timeout
        why, stopped_at, seen = None, None, 0
        with open(here / "stdout.log", "wb") as out, open(here / "stderr.log", "wb") as err:
            process = subprocess.Popen(self.argv, cwd=here, env=env, stdout=out, stderr=err, start_new_session=True)
            try:
                while (code := _exit_code(process, self.POLL)) is None:
                    if deadline is not None and time.monotonic() > deadline:
                        why = f"timed out after {self.config.timeout:g} s"
                        break
                    stopped_at, seen = self._ask_scheduler(here.name, seen)
                    if stopped_at is not None:
                        break
            finally:  # stopped, timed out, or the search interrupted (Ctrl-C): no trial outlives its evaluation
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)  # the script and anything it started
                code = reap(process)
        if why is None and stopped_at is None and code != 0:
            why = f"exited with code {code}"
        return code, why, stopped_at

    def _ask_scheduler(self, trial_id: str, seen: int) -> tuple[int | None, int]:
        """Ask the rule at each result since ``seen``: where it stops (None: goes on), and the new ``seen``."""
        if self.scheduler is None:
            return None, seen
        curve = self._curve(read_results(self.workdir / trial_id / "results.jsonl"))
        if len(curve) <= seen:
            return None, seen
        others = self._others(trial_id)
        return next((n for n in range(seen + 1, len(curve) + 1)
                     if self.scheduler.should_stop(curve[:n], others, trial_id)), None), len(curve)

    def _curve(self, reports: list[dict]) -> list[float]:
        """The intermediate results as scores (higher better), which is how the rules read them."""
        return [self.objective.sign * float(default_value(r["value"])) for r in reports if r["type"] == "intermediate"]

    def _others(self, trial_id: str) -> list[tuple[str, list[float], bool]]:
        """Every other trial's curve in the working directory, and whether it completed."""
        curves = []
        for path in self.workdir.glob("*/results.jsonl"):
            if path.parent.name != trial_id:
                reports = read_results(path)
                curves.append((path.parent.name, self._curve(reports), any(r["type"] == "final" for r in reports)))
        return curves


def reap(process: subprocess.Popen, seconds: float = 5.0) -> int:
    """The exit code of a trial just killed. Ctrl-C landing inside ``Popen.wait`` between
    its taking of the lock that guards ``waitpid`` and the ``try`` that gives it back leaves
    the lock taken (CPython 3.11), and a plain ``wait()`` then blocks for ever: after
    ``seconds`` the pid is waited for directly."""
    try:
        return process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.returncode = os.waitstatus_to_exitcode(os.waitpid(process.pid, 0)[1])
        return process.returncode


def _exit_code(process: subprocess.Popen, seconds: float) -> int | None:
    try:
        return process.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


def next_sequence_id(workdir: Path) -> int:
    """The next trial's index in the run, 0, 1, 2, ..., counted in ``workdir`` under a lock
    (the workers share it) and kept there, so that a resumed run counts on."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "sequence", "a+") as counter:
        fcntl.flock(counter, fcntl.LOCK_EX)
        counter.seek(0)
        number = int(counter.read() or 0)
        counter.seek(0)
        counter.truncate()
        counter.write(str(number + 1))
    return number


def files_made_absolute(command: str, base: Path) -> list[str]:
    """``command``'s words naming a file under ``base``, made absolute (not resolved: venvs)."""
    return [str((base / word).absolute()) if (base / word).is_file() else word for word in shlex.split(command)]


def read_results(path: Path) -> list[dict]:
    """The complete lines of a trial's result file (one may be half written)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]
