"""The weight-sharing supernet, its trainer, and the worker that hosts it."""

import os
import signal
import sqlite3
import threading
from functools import partial

import numpy as np
import pytest
import torch

from rlnas.core.context import RunContext
from rlnas.core.registry import BACKENDS
from rlnas.core.store import EvaluationStore
from rlnas.evaluators import StoredEvaluator, SupernetEvaluator
from rlnas.evaluators.supernet import SupernetConfig, SupernetTrainer, TrainerHost
from rlnas.execution.processes import ProcessPool
from rlnas.networks.supernet import NB201SuperCell, Supernet
from tests.test_train import train

# NB201 decisions are op indices per edge: none, skip, conv1x1, conv3x3, avg_pool.
A = (3, 1, 3, 2, 4, 3)
B = (3, 4, 0, 1, 2, 2)   # shares conv3x3 on edge 0 with A
C = (2, 4, 0, 1, 2, 2)   # conv1x1 on edge 0


def trainer(space, **kwargs) -> SupernetTrainer:
    return SupernetTrainer(space, **{"mode": "enas", "train_steps": 3, "warmup_epochs": 0, **kwargs})


def test_same_op_at_same_position_reads_the_same_tensor(nb201):
    net = Supernet(nb201, 1, 10, channels=4, cells_per_stage=1)
    cell = next(m for m in net.modules() if isinstance(m, NB201SuperCell))
    shared = cell.edges[0][3][1].weight  # edge 0, nor_conv_3x3, its Conv2d
    x = torch.randn(8, 1, 8, 8)
    grads = {}
    for name, arch in {"A": A, "B": B, "C": C}.items():
        net.zero_grad(set_to_none=True)
        net.select(arch)
        net(x).sum().backward()
        grads[name] = shared.grad
    assert grads["A"] is not None and grads["B"] is not None and grads["C"] is None
    assert grads["A"].abs().sum() > 0 and grads["B"].abs().sum() > 0


def test_training_one_architecture_moves_anothers_score(nb201):
    t = trainer(nb201)
    before = t.score(B)
    assert t.score(B) == before and 0 <= before[0] <= 1 and before[1] > 0  # deterministic for a given weight state
    for _ in range(20):
        t.train_step(A)
    assert t.version == 20
    assert t.score(B) != before


def test_nasnet_supernet_shares_weights_between_cells_of_one_architecture(nasnet):
    t = trainer(nasnet)
    rng = np.random.default_rng(0)
    archs = [nasnet.to_string(nasnet.sample(rng)) for _ in range(3)]
    results = [t.evaluate(a) for a in archs]
    assert [r.metrics["weight_version"] for r in results] == [3, 6, 9]
    assert all(0.0 <= r.score <= 1.0 for r in results)


def test_oneshot_freezes_weights_during_search(nb201):
    t = SupernetTrainer(nb201, mode="oneshot", warmup_epochs=1)
    first = t.evaluate(nb201.to_string(A))
    version = first.metrics["weight_version"]
    assert version == len(t.train_y) // t.config.batch_size  # one epoch of uniformly sampled paths
    t.evaluate(nb201.to_string(B))
    assert t.evaluate(nb201.to_string(A)).score == first.score
    assert t.version == version


def test_checkpoint_restores_the_same_weights_and_data_stream(nb201):
    t = trainer(nb201)
    t.evaluate(nb201.to_string(A))
    state = t.state_dict()
    restored = trainer(nb201)
    restored.load_state_dict(state)
    ours, theirs = restored.evaluate(nb201.to_string(B)), t.evaluate(nb201.to_string(B))
    assert (ours.score, ours.metrics) == (theirs.score, theirs.metrics)


def test_bad_settings_are_refused_by_name(nb201):
    with pytest.raises(ValueError, match="supernet evaluator: mode='darts' must be one of 'oneshot', 'enas'"):
        SupernetEvaluator(nb201, mode="darts")
    with pytest.raises(ValueError, match="oneshot trains only before the search"):
        SupernetEvaluator(nb201, mode="oneshot", warmup_epochs=0)
    with pytest.raises(ValueError, match="train_steps must be >= 1"):
        SupernetEvaluator(nb201, mode="enas", train_steps=0)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; available datasets: cifar10, digits"):
        SupernetEvaluator(nb201, run=RunContext(dataset="mnist"))
    with pytest.raises(ValueError, match=r"supernet has no setting\(s\) \['lrr'\]; it takes mode, warmup_epochs"):
        SupernetEvaluator(nb201, lrr=0.1)


INLINE = RunContext(backend=BACKENDS.config("inline"))


def test_diverging_loss_is_a_failed_evaluation_in_the_store(nb201, tmp_path):
    evaluator = SupernetEvaluator(nb201, lr=1e30, warmup_epochs=0, run=INLINE)
    store = EvaluationStore(tmp_path / "s.sqlite")
    stored = StoredEvaluator(evaluator, store)
    results = [stored.evaluate(nb201.to_string(arch)) for arch in (A, B, C)]
    failed = [r for r in results if "failed" in r.metrics]
    assert failed, "an lr of 1e30 should blow the loss up"
    assert all(("training loss is" in r.metrics["failed"] or "non-finite logits" in r.metrics["failed"])
               for r in failed)
    rows = {e.arch: e for e in store.history()}
    assert len(rows) == 3 and all("failed" in rows[r.arch].metrics for r in failed)
    weights = evaluator.host.call("state_dict")["model"].values()
    assert all(torch.isfinite(w).all() for w in weights), "a non-finite loss must not reach the weights"


def test_the_host_checkpoints_every_evaluation_and_a_new_one_continues_from_it(nb201, tmp_path):
    config = SupernetConfig(mode="enas", train_steps=2, warmup_epochs=0)
    host = TrainerHost(nb201, config, checkpoint_path=tmp_path / "supernet.pt")
    first = host.evaluate(nb201.to_string(A))
    resumed = TrainerHost(nb201, config, checkpoint_path=tmp_path / "supernet.pt")
    assert resumed.version == first.metrics["weight_version"] == 2
    ours, theirs = resumed.evaluate(nb201.to_string(B)), host.evaluate(nb201.to_string(B))
    assert (ours.score, ours.metrics) == (theirs.score, theirs.metrics)


@pytest.mark.slow
def test_the_supernet_lives_in_a_worker_process_by_default(nb201, tmp_path):
    evaluator = SupernetEvaluator(nb201, train_steps=1, warmup_epochs=0, run=RunContext(run_dir=tmp_path))
    try:
        first = evaluator.evaluate(nb201.to_string(A))
        assert first.metrics["weight_version"] == 1 and (tmp_path / "supernet.pt").is_file()
        assert isinstance(evaluator.host, ProcessPool)
        assert evaluator.host.call("evaluate", nb201.to_string(B)).metrics["weight_version"] == 2
        with pytest.raises(TypeError, match="cannot be sent to another process"):
            __import__("pickle").dumps(evaluator)
    finally:
        evaluator.close()


@pytest.mark.slow
def test_killed_worker_is_restarted_and_the_pending_request_answered(nb201, tmp_path):
    host = ProcessPool(partial(TrainerHost, nb201, SupernetConfig(mode="enas", train_steps=400, warmup_epochs=0),
                               checkpoint_path=tmp_path / "supernet.pt"), 1)
    try:
        host.call("evaluate", nb201.to_string(A))  # up and checkpointed at version 400
        (first_pid,) = [p.pid for p, _ in host._workers.values()]
        host.submit("again", "evaluate", nb201.to_string(B))
        killer = threading.Timer(0.5, os.kill, (first_pid, signal.SIGKILL))  # mid-way through 400 steps
        killer.start()
        (outcome,) = host.wait()
        killer.join()
        assert outcome.error is None and outcome.value.metrics["weight_version"] == 800
        assert [p.pid for p, _ in host._workers.values()] != [first_pid]  # a fresh worker, from the checkpoint
    finally:
        host.close()


def test_malformed_architecture_fails_before_it_reaches_the_worker(nb201):
    evaluator = SupernetEvaluator(nb201, train_steps=1)
    with pytest.raises(ValueError, match="malformed NB201 architecture"):
        evaluator.evaluate("|conv~0|")
    assert evaluator._host is None  # nothing was started for it
    evaluator.close()


def scores(run_dir):
    with sqlite3.connect(run_dir / "evaluations.sqlite") as db:
        return dict(db.execute("SELECT arch, score FROM evaluations"))


@pytest.mark.slow
def test_oneshot_scores_are_the_same_on_parallel_workers(nb201, tmp_path):
    """Frozen weights, one warm-up per worker from the same seed: parallel=2 scores every
    architecture as one process does."""
    args = ["agent=random", "evaluator=supernet", "evaluator.mode=oneshot", "evaluator.retrain.top_k=0",
            "budget.evaluations=6", "quiet=true"]
    train(*args, "parallel=2", f"hydra.run.dir={tmp_path}")
    parallel = scores(tmp_path)
    assert len(parallel) == 6
    torch.set_num_threads(1)  # as in a worker, so the float sums run in the same order
    host = TrainerHost(nb201, SupernetConfig(mode="oneshot", warmup_epochs=1))
    assert parallel == {arch: host.evaluate(arch).score for arch in parallel}
