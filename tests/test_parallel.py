"""parallel=N: evaluations on worker processes and on a local Ray, an exact budget, workers
that die, a runner killed with evaluations in flight, and every kind of agent: proposing
whole cells (asynchronous) or stepping a vector env (lock-step)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from functools import partial

import numpy as np
import pytest

from rlnas.agents import make_agent
from rlnas.core import checkpoint
from rlnas.core.registry import BACKENDS
from rlnas.core.store import EvaluationStore
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget, VectorSearchMonitor
from rlnas.evaluators import CallableEvaluator, StoredEvaluator, TabularEvaluator
from rlnas.execution.inline import InlinePool
from rlnas.execution.processes import ProcessPool
from rlnas.search.driver import AsyncSearch
from rlnas.search.lockstep import LockStepEnvs, evaluate_all
from rlnas.spaces import NB201Space
from tests.test_train import ROOT, stored_archs, train
from tests.waiting import wait_until


def report_of(run_dir):
    return json.loads((run_dir / "report.json").read_text())


def failed_rows(run_dir):
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        return [json.loads(m) for (m,) in db.execute("SELECT metrics FROM evaluations")
                if "failed" in json.loads(m)]


@pytest.mark.parametrize("agent,backend", [("evolution", "process"), ("local_search", "process"),
                                           ("tpe", "process"), ("evolution", "ray")])
@pytest.mark.slow
def test_tabular_nb201_in_parallel(tmp_path, agent, backend):
    if backend == "ray":
        pytest.importorskip("ray")
    train(f"agent={agent}", "parallel=2", f"backend={backend}", "budget.evaluations=40", "quiet=true",
          f"hydra.run.dir={tmp_path}")
    archs = stored_archs(tmp_path)
    assert len(archs) == 40 == len(set(archs))  # the budget exactly, nothing paid twice
    report = report_of(tmp_path)
    assert report["evaluations"] == 40 and report["stopped_by"] == "budget.evaluations"
    # every result came back from the workers and was scored as the table scores it: which
    # cells a parallel search picks depends on timing, so the best of them is not asserted
    table = TabularEvaluator()
    assert report["best_search_score"] == pytest.approx(max(table.evaluate(a).score for a in archs))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["process", "ray"])
def test_scratch_on_nasnet_in_parallel(tmp_path, backend):
    if backend == "ray":
        pytest.importorskip("ray")
    train("agent=random", "env=nasnet", "evaluator=scratch", "evaluator.epochs=1", "parallel=2",
          f"backend={backend}", "budget.evaluations=4", "quiet=true", f"hydra.run.dir={tmp_path}",
          timeout=600)
    archs = stored_archs(tmp_path)
    assert len(archs) == 4 == len(set(archs)) and not failed_rows(tmp_path)
    report = report_of(tmp_path)
    assert 0.0 < report["best_search_score"] <= 1.0
    assert 0.0 < report["busy_fraction"] <= 1.0  # training children kept the workers busy some of the time
    # the workers keep the best network trained, as one process does (before, none was kept)
    saved = checkpoint.load(report["best_model"])
    assert saved["arch"] == report["best_arch"] and saved["metrics"] == report["best_metrics"]


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_its_evaluation_retried(tmp_path):
    marker = tmp_path / "died"
    run_dir = tmp_path / "run"
    train("agent=random", "evaluator=function", "evaluator.fn=tests.objectives:dies_once", "parallel=2",
          "budget.evaluations=20", "quiet=true", f"hydra.run.dir={run_dir}", env={"RLNAS_TEST_MARKER": str(marker)})
    assert marker.exists()  # a worker did die mid-evaluation
    archs = stored_archs(run_dir)
    assert len(archs) == 20 == len(set(archs)) and not failed_rows(run_dir)


@pytest.mark.slow
def test_an_evaluation_that_kills_every_worker_is_recorded_as_failed():
    space = NB201Space()
    pool = ProcessPool(partial(CallableEvaluator, space, "tests.objectives:dies_on_none_first"), workers=2)
    try:
        doomed, fine = space.to_string((0, 3, 3, 3, 3, 3)), space.to_string((3, 3, 3, 3, 3, 3))
        pool.submit(doomed, "evaluate", doomed)
        pool.submit(fine, "evaluate", fine)
        outcomes = {}
        while pool.in_flight:
            outcomes.update({o.key: o for o in pool.wait()})
        assert "the worker died" in outcomes[doomed].error and "tried 2 times" in outcomes[doomed].error
        assert outcomes[fine].error is None and outcomes[fine].value.score > 0.5
        pool.submit(fine, "evaluate", fine)  # the replacement workers serve on
        assert pool.wait()[0].value.score == outcomes[fine].value.score
    finally:
        pool.close()


def test_unknown_backends_are_refused_naming_the_others():
    with pytest.raises(ValueError, match="unknown backend 'mpi'; available backends: inline, process, ray"):
        BACKENDS.get("mpi")
    proc = train("agent=random", "parallel=2", "backend=mpi", "budget.evaluations=10", "quiet=true", check=False)
    assert proc.returncode != 0 and "backend/mpi" in proc.stderr and "process" in proc.stderr


def sigkill_train_once_stored(run_dir, stored: int, *args, env=None) -> list[str]:
    """Start train.py, SIGKILL it once the store holds ``stored`` evaluations and its last
    checkpoint has evaluations in flight, and return what the store holds."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, f"hydra.run.dir={run_dir}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    wait_until(lambda: (run_dir / "checkpoint.pt").exists() and len(stored_archs(run_dir)) >= stored
               and checkpoint.load(run_dir / "checkpoint.pt").get("in_flight"),  # at times one alone is in flight
               120, f"{stored} evaluations stored and a checkpoint with evaluations in flight")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return stored_archs(run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["evolution", "reinforce"])
def test_runner_sigkilled_with_evaluations_in_flight_resumes_exactly(tmp_path, agent):
    before = sigkill_train_once_stored(tmp_path, 8, f"agent={agent}", "evaluator=function",
                                       "evaluator.fn=tests.objectives:sleepy_table_score", "parallel=2",
                                       "budget.evaluations=24", "quiet=true")
    assert 8 <= len(before) < 24
    assert checkpoint.load(tmp_path / "checkpoint.pt")["in_flight"]  # killed with evaluations in flight

    train(f"resume={tmp_path}", "quiet=true")
    after = stored_archs(tmp_path)
    assert after[:len(before)] == before  # the store is intact
    assert len(after) == 24 == len(set(after))  # the budget exactly, every architecture once
    assert report_of(tmp_path)["evaluations"] == 24


TINY_DREAMER = {"deter_size": 32, "hidden_size": 32, "stoch_size": 4, "classes": 4, "units": 32,
                "updates_per_evaluation": 2, "prefill": 24}


@pytest.mark.parametrize("agent,space,evaluations", [
    ("reinforce", "nb201", 30), ("reinforce", "nasnet", 8), ("dreamer_v2", "nb201", 12)])
def test_proposing_one_cell_at_a_time_is_the_agents_own_search(agent, space, evaluations):
    """REINFORCE and Dreamer propose a whole cell (for parallel runs) as their episodes would
    build it: with one in flight, propose/observe is learn(), architecture for architecture."""
    def fresh():
        evaluator = ("tabular", {}) if space == "nb201" else (
            "function", {"fn": "tests.objectives:nasnet_sep_conv_share"})
        hparams = TINY_DREAMER if agent == "dreamer_v2" else {}
        return make_agent(agent, NASEnv(space, evaluator[0], evaluator_kwargs=evaluator[1]), seed=5, **hparams)

    learner = fresh()
    learner.learn(Budget(evaluations=evaluations))
    proposer = fresh()
    while len(proposer.env.evaluations) < evaluations:
        decisions = proposer.propose()
        proposer.observe(decisions, proposer.play(decisions))
    assert [e.arch for e in proposer.env.evaluations] == [e.arch for e in learner.env.evaluations]
    assert proposer.env.env_steps == learner.env.env_steps


def test_simulated_workers_return_results_in_submission_order():
    table = TabularEvaluator()
    stored = StoredEvaluator(table, EvaluationStore(":memory:"))
    agent = make_agent("reinforce", NASEnv("nb201", stored), seed=0, preset=None)
    pool = InlinePool(lambda: table, workers=4)
    seen_in_flight = []
    agent_observe = agent.observe

    def observe(decisions, score):
        seen_in_flight.append(len(pool.in_flight))
        agent_observe(decisions, score)

    agent.observe = observe
    AsyncSearch(agent, pool, stored).learn(Budget(evaluations=20))
    assert len(agent.env.evaluations) == 20
    assert max(seen_in_flight) == 3  # each result came back with three others still out
    assert seen_in_flight[-3:] == [2, 1, 0]  # and the last ones drained at the budget


def test_lock_step_envs_evaluate_at_once_and_hold_the_budget():
    table = TabularEvaluator()
    stored = StoredEvaluator(table, EvaluationStore(":memory:"))
    pool, budget = InlinePool(lambda: table, workers=3), Budget(evaluations=2)

    def settle(archs):
        paid = monitor.affordable(archs, budget)
        evaluate_all(pool, stored, paid)
        return paid

    monitor = VectorSearchMonitor(LockStepEnvs([lambda: NASEnv("nb201", stored)] * 3, settle))
    monitor.reset(seed=0)
    for _ in range(5):
        monitor.step(np.array([1, 2, 3]))
    _, rewards, terminated, truncated, info = monitor.step(np.array([1, 2, 1]))  # completes three cells
    space = NB201Space()
    first, second = space.to_string((1,) * 5 + (1,)), space.to_string((2,) * 5 + (2,))
    assert [e.arch for e in monitor.evaluations] == [first, second]  # in env order, up to the budget
    assert list(terminated) == [True, True, False] and list(truncated) == [False, False, True]
    assert info["final_info"]["over_budget"][2] and rewards[2] == 0.0
    assert rewards[0] == pytest.approx(table.evaluate(first).score)
    assert stored.lookup(space.to_string((3,) * 5 + (1,))) is None  # the cut cell was never evaluated
    assert monitor.affordable([first, "new"], budget) == [first]  # paid cells stay free, new ones do not fit


@pytest.mark.slow
@pytest.mark.parametrize("agent,backend", [("ppo", "process"), ("dqn", "process"), ("a2c", "ray")])
def test_vector_env_agents_run_in_lock_step_on_the_workers(tmp_path, agent, backend):
    if backend == "ray":
        pytest.importorskip("ray")
    marker, run_dir = tmp_path / "pids", tmp_path / "run"
    train(f"agent={agent}", "evaluator=function", "evaluator.fn=tests.objectives:table_score_noting_pid",
          "parallel=2", f"backend={backend}", "budget.evaluations=21", "quiet=true",
          f"hydra.run.dir={run_dir}", env={"RLNAS_TEST_MARKER": str(marker)})
    archs = stored_archs(run_dir)
    assert len(archs) == 21 == len(set(archs)) and report_of(run_dir)["evaluations"] == 21  # odd: one cell cut
    pids = marker.read_text().split()
    assert len(pids) == 21 and len(set(pids)) >= 2  # every evaluation on a worker, not in the runner


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["reinforce", "dreamer_v2"])
def test_step_by_step_agents_propose_asynchronously(tmp_path, agent):
    overrides = [f"agent.{k}={v}" for k, v in TINY_DREAMER.items()] if agent == "dreamer_v2" else []
    train(f"agent={agent}", *overrides, "parallel=2", "budget.evaluations=20", "quiet=true",
          f"hydra.run.dir={tmp_path}")
    archs = stored_archs(tmp_path)
    assert len(archs) == 20 == len(set(archs)) and report_of(tmp_path)["stopped_by"] == "budget.evaluations"
