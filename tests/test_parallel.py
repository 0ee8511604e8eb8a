"""parallel=N: evaluations on worker processes and on a local Ray, an exact budget, workers
that die, and a runner killed with evaluations in flight."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from rlnas import checkpoint
from rlnas.parallel import EvaluationPool
from rlnas.spaces import NB201Space
from tests.test_train import ROOT, stored_archs, train

NB201 = {"name": "nb201"}


def report_of(run_dir):
    return json.loads((run_dir / "report.json").read_text())


def failed_rows(run_dir):
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        return [json.loads(m) for (m,) in db.execute("SELECT metrics FROM evaluations")
                if "failed" in json.loads(m)]


@pytest.mark.parametrize("backend", ["process", "ray"])
@pytest.mark.parametrize("agent", ["evolution", "local_search", "tpe"])
def test_tabular_nb201_in_parallel(tmp_path, backend, agent):
    if backend == "ray":
        pytest.importorskip("ray")
    train(f"agent={agent}", "parallel=2", f"evaluator.backend={backend}", "budget.evaluations=40", "quiet=true",
          f"hydra.run.dir={tmp_path}")
    archs = stored_archs(tmp_path)
    assert len(archs) == 40 == len(set(archs))  # the budget exactly, nothing paid twice
    report = report_of(tmp_path)
    assert report["evaluations"] == 40 and report["stopped_by"] == "budget.evaluations"
    assert report["best_search_score"] > 0.8  # 40 cells of NB201's C10 table: better than its median


@pytest.mark.parametrize("backend", ["process", "ray"])
def test_scratch_on_nasnet_in_parallel(tmp_path, backend):
    if backend == "ray":
        pytest.importorskip("ray")
    train("agent=random", "env=nasnet", "evaluator=scratch", "evaluator.epochs=1", "parallel=2",
          f"evaluator.backend={backend}", "budget.evaluations=4", "quiet=true", f"hydra.run.dir={tmp_path}",
          timeout=600)
    archs = stored_archs(tmp_path)
    assert len(archs) == 4 == len(set(archs)) and not failed_rows(tmp_path)
    assert 0.0 < report_of(tmp_path)["best_search_score"] <= 1.0


def test_a_killed_worker_is_replaced_and_its_evaluation_retried(tmp_path):
    marker = tmp_path / "died"
    run_dir = tmp_path / "run"
    train("agent=random", "evaluator=function", "evaluator.fn=tests.objectives:dies_once", "parallel=2",
          "budget.evaluations=20", "quiet=true", f"hydra.run.dir={run_dir}", env={"RLNAS_TEST_MARKER": str(marker)})
    assert marker.exists()  # a worker did die mid-evaluation
    archs = stored_archs(run_dir)
    assert len(archs) == 20 == len(set(archs)) and not failed_rows(run_dir)


def test_an_evaluation_that_kills_every_worker_is_recorded_as_failed():
    pool = EvaluationPool({"env": NB201, "evaluator": {"name": "function",
                                                       "fn": "tests.objectives:dies_on_none_first"}}, workers=2)
    try:
        space = NB201Space()
        doomed, fine = space.to_string((0, 3, 3, 3, 3, 3)), space.to_string((3, 3, 3, 3, 3, 3))
        pool.submit(doomed)
        pool.submit(fine)
        results = {}
        while pool.in_flight:
            results.update({e.arch: e for e in pool.wait()})
        assert "worker process died" in results[doomed].metrics["failed"]
        assert "tried 2 times" in results[doomed].metrics["failed"] and results[doomed].score == 0.0
        assert "failed" not in results[fine].metrics and results[fine].score > 0.5
        pool.submit(fine)  # the replacement workers serve on
        assert pool.wait()[0].score == results[fine].score
    finally:
        pool.close()


def test_pool_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="unknown evaluator.backend 'mpi'; choose from process, ray"):
        EvaluationPool({"env": NB201, "evaluator": {"name": "tabular"}}, workers=2, backend="mpi")
    proc = train("agent=ppo", "parallel=2", "budget.evaluations=10", "quiet=true", check=False)
    assert proc.returncode != 0 and "parallel=2 needs an agent that proposes whole architectures" in proc.stderr
    proc = train("agent=random", "parallel=2", "evaluator.workers=3", "budget.evaluations=10", "quiet=true",
                 check=False)
    assert proc.returncode != 0 and "evaluator.workers=3 differs from parallel=2" in proc.stderr


def test_runner_sigkilled_with_evaluations_in_flight_resumes_exactly(tmp_path):
    args = ["agent=evolution", "evaluator=function", "evaluator.fn=tests.objectives:sleepy_table_score",
            "parallel=2", "budget.evaluations=24", "quiet=true", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
            (tmp_path / "checkpoint.pt").exists() and len(stored_archs(tmp_path)) >= 8):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = stored_archs(tmp_path)
    assert 8 <= len(before) < 24
    assert checkpoint.load(tmp_path / "checkpoint.pt")["in_flight"]  # killed with evaluations in flight

    train(f"resume={tmp_path}", "quiet=true")
    after = stored_archs(tmp_path)
    assert after[:len(before)] == before  # the store is intact
    assert len(after) == 24 == len(set(after))  # the budget exactly, every architecture once
    assert report_of(tmp_path)["evaluations"] == 24
