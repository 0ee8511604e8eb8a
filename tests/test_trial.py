"""The trial evaluator (rlnas/evaluators/trial.py) and the trial API
(rlnas/trial.py): a real script per evaluation, its failures recorded, the search going on."""

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rlnas.core import checkpoint
from rlnas.core.context import RunContext
from rlnas.evaluators import TrialEvaluator
from rlnas.evaluators.trial import reap
from rlnas.spaces import NB201Space
from rlnas.spaces.hpo import HPOSpace
from tests.test_parallel import failed_rows, report_of, sigkill_train_once_stored
from tests.test_train import ROOT, stored_archs, train
from tests.waiting import wait_until

SPACE = {"mode": {"_type": "choice", "_value": ["ok", "crash", "hang", "silent"]},
         "x": {"_type": "quniform", "_value": [0, 1, 0.25]}}
SCRIPT = "python tests/trial_script.py"


def evaluate(tmp_path, params, **kwargs):
    space = HPOSpace(SPACE)
    evaluator = TrialEvaluator(space, f"{sys.executable} {ROOT / 'tests' / 'trial_script.py'}",
                               workdir=tmp_path, **kwargs)
    return evaluator.evaluate(space.to_string(space.from_parameters(params)))


def test_a_trial_gets_its_parameters_and_reports_back(tmp_path):
    result = evaluate(tmp_path, {"mode": "ok", "x": 0.75}, run=RunContext(seed=7))  # the run's seed
    assert result.score == 0.75 and "failed" not in result.metrics
    assert result.metrics["intermediate"] == [0.25, 0.5, 0.75] and result.metrics["epochs"] == 3
    trial_dir = tmp_path / result.metrics["trial_id"]
    seen = json.loads((trial_dir / "seen.json").read_text())  # written in the trial's own directory
    assert seen == {"params": {"mode": "ok", "x": 0.75}, "seed": "7", "trial_id": result.metrics["trial_id"],
                    "cwd": str(trial_dir)}


def test_a_trial_on_a_cell_space_gets_its_architecture(tmp_path):
    script = tmp_path / "cell_trial.py"
    script.write_text("from rlnas import trial\n"
                      "from rlnas.spaces import NB201Space\n"
                      "arch = trial.get_next_parameter()['arch']\n"
                      "assert trial.get_current_parameter('arch') == arch\n"
                      "trial.report_final_result(sum(NB201Space().from_string(arch)) / 24)\n")
    space = NB201Space()
    arch = space.to_string((4, 4, 4, 4, 4, 3))
    result = TrialEvaluator(space, f"{sys.executable} {script}", workdir=tmp_path / "trials").evaluate(arch)
    assert "failed" not in result.metrics, result.metrics.get("stderr_tail")
    assert result.score == 23 / 24


@pytest.mark.parametrize("params,why", [
    ({"mode": "crash", "x": 0.5}, "trial exited with code 3"),
    ({"mode": "silent", "x": 0.5}, "trial reported no final result"),
    ({"mode": "hang", "x": 0.5}, "trial timed out after 1 s"),
])
def test_a_failed_trial_is_recorded_with_why(tmp_path, params, why):
    start = time.monotonic()
    result = evaluate(tmp_path, params, timeout=1)
    assert result.score == -math.inf and result.metrics["failed"] == why  # below every real score
    assert result.metrics["intermediate"] == [1 / 6, 1 / 3, 0.5]  # what it reported before failing is kept
    assert time.monotonic() - start < 30  # a hanging trial is killed, not waited for
    if params["mode"] == "crash":
        assert result.metrics["exit_code"] == 3 and "boom: the trial crashed" in result.metrics["stderr_tail"]


def test_minimize_scores_minus_the_value_and_keeps_the_value(tmp_path):
    result = evaluate(tmp_path, {"mode": "ok", "x": 0.75}, optimize_mode="minimize")
    assert result.score == -0.75 and result.metrics["value"] == 0.75 and result.metrics["epochs"] == 3
    fingerprints = {TrialEvaluator(HPOSpace(SPACE), SCRIPT, optimize_mode=mode).fingerprint
                    for mode in ("maximize", "minimize")}
    assert len(fingerprints) == 2  # a store never answers one mode with the other's sign
    with pytest.raises(ValueError, match="optimize_mode='min' must be one of 'maximize', 'minimize'"):
        TrialEvaluator(HPOSpace(SPACE), SCRIPT, optimize_mode="min")


@pytest.mark.slow
def test_a_minimizing_search_never_rewards_a_crash_above_a_result(tmp_path):
    """Every score of a loss is negative: a failure that earned 0 would be the best of all."""
    (tmp_path / "space.json").write_text(json.dumps({**SPACE, "mode": {"_type": "choice", "_value": ["ok", "crash"]}}))
    run_dir = tmp_path / "run"
    proc = train("agent=random", "env=hpo", f"env.search_space={tmp_path / 'space.json'}", "evaluator=trial",
                 f"evaluator.command={SCRIPT}", "evaluator.optimize_mode=minimize", "budget.evaluations=8",
                 "seed=1", f"hydra.run.dir={run_dir}", timeout=600)
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        rows = [(json.loads(arch), score, json.loads(m))
                for arch, score, m in db.execute("SELECT arch, score, metrics FROM evaluations ORDER BY seq")]
    ok = [(arch, score) for arch, score, m in rows if "failed" not in m]
    assert len(ok) < len(rows) and ok and all(score == -arch["x"] for arch, score in ok)
    report = report_of(run_dir)
    best = min(ok, key=lambda row: row[0]["x"])
    assert report["best_parameters"] == best[0] and report["best_metrics"]["value"] == best[0]["x"]
    assert report["best_search_score"] == best[1]
    assert report["failed"] == len(rows) - len(ok) and report["first_failure"] == "trial exited with code 3"
    assert report["best_loss"] == best[0]["x"] and f"best loss     {best[0]['x']:.6g} (minimized" in proc.stdout
    assert f"failed        {len(rows) - len(ok)} of 8 evaluations; the first: trial exited" in proc.stdout


def test_the_trial_api_outside_a_search_keeps_the_scripts_defaults(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLNAS_")}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "trial_script.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True)
    assert "rlnas.trial: final result {'default': 0.5, 'epochs': 3}" in proc.stdout
    assert json.loads((tmp_path / "seen.json").read_text())["params"] == {}


def test_bad_trial_settings_are_refused():
    with pytest.raises(ValueError, match="command='' must be a shell command"):
        TrialEvaluator(HPOSpace(SPACE), "")
    with pytest.raises(ValueError, match="timeout=0 must be"):
        TrialEvaluator(HPOSpace(SPACE), SCRIPT, timeout=0)


@pytest.mark.slow
@pytest.mark.parametrize("parallel,backend", [(1, "process"), (2, "process"), (2, "ray")])
def test_a_search_over_trials_completes_its_budget_through_failures(tmp_path, parallel, backend):
    if backend == "ray":
        pytest.importorskip("ray")
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    run_dir = tmp_path / "run"
    train("agent=random", "env=hpo", f"env.search_space={tmp_path / 'space.json'}", "evaluator=trial",
          f"evaluator.command={SCRIPT}", "evaluator.timeout=2", f"parallel={parallel}", f"backend={backend}",
          "budget.evaluations=12",
          "quiet=true", f"hydra.run.dir={run_dir}", timeout=600)
    archs = stored_archs(run_dir)
    assert len(archs) == 12 == len(set(archs)) and report_of(run_dir)["evaluations"] == 12
    modes = [json.loads(arch)["mode"] for arch in archs]
    failed = failed_rows(run_dir)
    assert len(failed) == sum(mode != "ok" for mode in modes) > 0  # every crash, hang and silence recorded
    assert report_of(run_dir)["best_parameters"]["mode"] == "ok"
    assert len([d for d in (run_dir / "trials").iterdir() if d.is_dir()]) == 12  # one working directory per trial


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not: an orphan's reaper may never come in a container)."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) not in "ZX"
    except FileNotFoundError:
        return False


def exists(pid: int) -> bool:
    """Whether process ``pid`` exists at all, a zombie included (so: not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("stop,parallel", [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGTERM, 2),
                                           (signal.SIGKILL, 1), (signal.SIGKILL, 2)])
@pytest.mark.slow
def test_ctrl_c_or_kill_mid_trial_leaves_no_trial_running(tmp_path, stop, parallel):
    """A trial runs in its own session, so the terminal's SIGINT (or a cluster's SIGTERM)
    reaches only the runner: it must take its trials down with it (jobs holding GPUs), the
    workers' included. SIGKILL leaves the runner no way out: the workers and trials see it gone."""
    space = {"mode": {"_type": "choice", "_value": ["hang"]}, "x": {"_type": "choice", "_value": [0, 1]}}
    (tmp_path / "space.json").write_text(json.dumps(space))
    pidfile = tmp_path / "trial.pids"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "agent=random", "env=hpo",
                             f"env.search_space={tmp_path / 'space.json'}", "evaluator=trial",
                             f"evaluator.command={SCRIPT}", "budget.evaluations=2", f"parallel={parallel}",
                             "quiet=true", f"hydra.run.dir={tmp_path / 'run'}"],
                            cwd=ROOT, env={**os.environ, "RLNAS_TEST_PIDFILE": str(pidfile),
                                           "PYTHONFAULTHANDLER": "1"},  # SIGABRT dumps every thread's stack
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # a suite started in the background inherits SIGINT ignored: a terminal's default
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    def written() -> list[str]:  # the pids written whole, each ends its line
        return pidfile.read_text().split("\n")[:-1] if pidfile.is_file() else []

    wait_until(lambda: proc.poll() is not None or len(written()) >= parallel, 120, f"{parallel} trials started")
    assert proc.poll() is None, proc.communicate()[0]  # the search is still running its trials
    trial_pids = [int(pid) for pid in written()]
    proc.send_signal(stop)
    try:
        out = proc.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:  # say where it hangs: the stacks faulthandler writes on SIGABRT
        proc.send_signal(signal.SIGABRT)
        stacks = proc.communicate(timeout=30)[0][-6000:]
        pytest.fail(f"the search still runs 60 s after {stop!r}; its threads:\n{stacks}")
    if stop == signal.SIGKILL:
        assert proc.returncode == -stop
        wait_until(lambda: not any(running(pid) for pid in trial_pids), 15, "the trials to end")  # each looks every s
        return
    assert proc.returncode == 128 + stop and "continue with: python train.py resume=" in out
    wait_until(lambda: not any(exists(pid) for pid in trial_pids), 15, "the trials to be reaped")  # gone, and reaped


def test_a_killed_trial_is_reaped_even_when_ctrl_c_left_popens_lock_taken():
    """Ctrl-C inside ``Popen.wait`` can leave its waitpid lock taken: a plain ``wait()``
    would then block for ever, and the search would never stop."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    process._waitpid_lock.acquire()  # as an interrupted wait leaves it
    os.killpg(process.pid, signal.SIGKILL)
    started = time.monotonic()
    assert reap(process, seconds=0.2) == -signal.SIGKILL
    assert time.monotonic() - started < 5 and process.returncode == -signal.SIGKILL and not exists(process.pid)


@pytest.mark.slow
def test_runner_sigkilled_mid_trial_resumes_without_losing_or_repeating_one(tmp_path):
    space = {"x": {"_type": "quniform", "_value": [0, 1, 0.05]}}
    (tmp_path / "space.json").write_text(json.dumps(space))
    run_dir = tmp_path / "run"
    before = sigkill_train_once_stored(run_dir, 4, "agent=random", "env=hpo",
                                       f"env.search_space={tmp_path / 'space.json'}", "evaluator=trial",
                                       f"evaluator.command={SCRIPT}", "parallel=2", "budget.evaluations=10",
                                       "quiet=true", env={"RLNAS_TEST_SLOW": "0.3"})
    in_flight = checkpoint.load(run_dir / "checkpoint.pt")["in_flight"]
    assert 4 <= len(before) < 10 and in_flight  # killed with trials running

    train(f"resume={run_dir}", "quiet=true", env={"RLNAS_TEST_SLOW": "0"})
    after = stored_archs(run_dir)
    assert after[:len(before)] == before  # no completed trial lost
    assert len(after) == 10 == len(set(after)) and not failed_rows(run_dir)  # none run twice, budget exact
    # the trials the kill cut short were run again; one in flight at the last checkpoint may
    # have finished and been stored before the kill, and is then rightly not run twice
    interrupted = {HPOSpace(space).to_string(decisions) for decisions in in_flight} - set(before)
    assert interrupted <= set(after[len(before):])


@pytest.mark.slow
@pytest.mark.parametrize("example,evaluations", [("digits_svc", 4), ("digits_mlp", 2)])
def test_the_examples_run_as_the_readme_says(tmp_path, example, evaluations):
    run_dir = tmp_path / "run"
    train("agent=random", "env=hpo", f"env.search_space=examples/{example}.json", "evaluator=trial",
          f"evaluator.command=python examples/{example}.py", f"budget.evaluations={evaluations}", "quiet=true",
          f"hydra.run.dir={run_dir}", timeout=600)
    assert report_of(run_dir)["evaluations"] == evaluations and not failed_rows(run_dir)
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        rows = [(score, json.loads(metrics)) for score, metrics in db.execute("SELECT score, metrics FROM evaluations")]
    for score, metrics in rows:  # validation accuracies; the SVC adds its test accuracy, the MLP one per epoch
        assert 0.0 < score <= 1.0
        assert 0.0 < metrics["test_acc"] <= 1.0 if example == "digits_svc" else len(metrics["intermediate"]) == 20


def test_a_command_hydra_would_read_as_a_boolean_stays_a_command(tmp_path):
    """``evaluator.command=true`` is the shell's ``true`` (it exits 0 and reports nothing);
    before, Hydra made it the boolean True and the run was refused."""
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    proc = train("agent=random", "env=hpo", f"env.search_space={tmp_path / 'space.json'}", "evaluator=trial",
                 "evaluator.command=true", "budget.evaluations=2", f"hydra.run.dir={tmp_path / 'run'}")
    assert "failed        2 of 2 evaluations; the first: trial reported no final result" in proc.stdout
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["evaluator"]["command"] == "true"
