"""The weight-sharing supernet, its trainer, and the backends that serve it."""

import os
import signal
import threading
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlnas.envs import NASEnv
from rlnas.evaluators import StoredEvaluator, SupernetEvaluator
from rlnas.store import EvaluationStore
from rlnas.supernet import NB201SuperCell, Supernet, SupernetTrainer
from rlnas.workers import ProcessBackend, TrainerHost

# NB201 decisions are op indices per edge: none, skip, conv1x1, conv3x3, avg_pool.
A = (3, 1, 3, 2, 4, 3)
B = (3, 4, 0, 1, 2, 2)   # shares conv3x3 on edge 0 with A
C = (2, 4, 0, 1, 2, 2)   # conv1x1 on edge 0


def trainer(space, **kwargs) -> SupernetTrainer:
    return SupernetTrainer(space, **{"mode": "enas", "train_steps": 3, **kwargs})


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
    assert version == len(t.train_y) // t.batch_size  # one epoch of uniformly sampled paths
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
    with pytest.raises(ValueError, match="mode must be one of oneshot, enas"):
        SupernetEvaluator(nb201, mode="darts")
    with pytest.raises(ValueError, match="oneshot trains only before the search"):
        SupernetEvaluator(nb201, mode="oneshot", warmup_epochs=0)
    with pytest.raises(ValueError, match="train_steps must be >= 1"):
        SupernetEvaluator(nb201, mode="enas", train_steps=0)
    with pytest.raises(ValueError, match="unknown evaluator backend 'mpi'"):
        SupernetEvaluator(nb201, backend="mpi")
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        SupernetEvaluator(nb201, dataset="mnist")
    with pytest.raises(TypeError, match="unexpected keyword argument 'lrr'; its settings are dataset, mode"):
        SupernetEvaluator(nb201, lrr=0.1)


def test_diverging_loss_is_a_failed_evaluation_in_the_store(nb201, tmp_path):
    evaluator = SupernetEvaluator(nb201, lr=1e30, backend="inline")
    store = EvaluationStore(tmp_path / "s.sqlite")
    stored = StoredEvaluator(evaluator, store)
    results = [stored.evaluate(nb201.to_string(arch)) for arch in (A, B, C)]
    failed = [r for r in results if "failed" in r.metrics]
    assert failed, "an lr of 1e30 should blow the loss up"
    assert all(r.score == 0.0 and ("training loss is" in r.metrics["failed"]
                                   or "non-finite logits" in r.metrics["failed"]) for r in failed)
    rows = {e.arch: e for e in store.history()}
    assert len(rows) == 3 and all("failed" in rows[r.arch].metrics for r in failed)
    params = evaluator.backend.trainer.model.parameters()
    assert all(torch.isfinite(p).all() for p in params), "a non-finite loss must not reach the weights"


def test_inline_backend_checkpoints_every_evaluation(nb201, tmp_path):
    kwargs = {"space": nb201, "mode": "enas", "train_steps": 2}
    backend = TrainerHost(kwargs, tmp_path / "supernet.pt")
    first = backend.evaluate([nb201.to_string(A)])[0]
    resumed = TrainerHost(kwargs, tmp_path / "supernet.pt")
    assert resumed.version == first.metrics["weight_version"] == 2
    ours, theirs = resumed.evaluate([nb201.to_string(B)])[0], backend.evaluate([nb201.to_string(B)])[0]
    assert (ours.score, ours.metrics) == (theirs.score, theirs.metrics)


def make_env(evaluator):
    return NASEnv(evaluator.space, evaluator)


def test_one_worker_serves_two_async_vector_env_workers(nb201):
    evaluator = SupernetEvaluator(nb201, train_steps=2)
    try:
        envs = gym.vector.AsyncVectorEnv([lambda: make_env(evaluator)] * 2, context="spawn")
        envs.reset(seed=0)
        for step in range(nb201.num_decisions):
            _, scores, terminated, _, _ = envs.step(np.array([step % 5, (step + 2) % 5]))
        envs.close()
        assert terminated.all() and np.all((scores > 0) & (scores <= 1))
        stats = evaluator.backend.client.stats()
        assert stats["clients"] == 2 and stats["weight_version"] == 4  # both trained the same weights
    finally:
        evaluator.close()


def test_killed_worker_is_restarted_and_the_pending_request_answered(nb201, tmp_path):
    backend = ProcessBackend({"space": nb201, "mode": "enas", "train_steps": 400}, tmp_path / "supernet.pt")
    try:
        first_pid = backend.process.pid
        answer = {}
        thread = threading.Thread(target=lambda: answer.update(r=backend.evaluate([nb201.to_string(A)])))
        thread.start()
        time.sleep(1.5)  # the worker is starting to train A for 400 steps
        assert thread.is_alive(), "the request should still be pending when the worker is killed"
        os.kill(first_pid, signal.SIGKILL)
        thread.join(120)
        assert answer["r"][0].metrics["weight_version"] == 400
        assert backend.restarts == 1 and backend.process.pid != first_pid
    finally:
        backend.close()


def test_malformed_architecture_fails_its_request_only(nb201):
    evaluator = SupernetEvaluator(nb201, train_steps=1)
    try:
        with pytest.raises(ValueError, match="malformed NB201 architecture"):
            evaluator.evaluate("|conv~0|")
        assert evaluator.evaluate(nb201.to_string(A)).metrics["weight_version"] == 1
    finally:
        evaluator.close()


def test_ray_pool_scores_like_one_process(nb201):
    archs = [nb201.to_string(a) for a in (A, B, C)]
    kwargs = {"mode": "oneshot", "warmup_epochs": 1}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a one-CPU Ray actor, so the float sums run in the same order
    try:
        inline = SupernetEvaluator(nb201, backend="inline", **kwargs).evaluate_many(archs)
    finally:
        torch.set_num_threads(threads)
    pool = SupernetEvaluator(nb201, backend="ray", workers=2, **kwargs)
    try:
        scores = [e.score for e in pool.evaluate_many(archs + archs)]  # each arch on both actors
        assert len(pool.backend.actors) == 2
        assert scores == [e.score for e in inline] * 2
    finally:
        pool.close()
    with pytest.raises(ValueError, match="enas trains one set of shared weights in order"):
        SupernetEvaluator(nb201, backend="ray", workers=2).backend  # noqa: B018


def test_concurrent_requests_are_answered_as_one_batch(nb201):
    from rlnas.workers import _answer

    host = TrainerHost({"space": nb201, "mode": "enas", "train_steps": 2})
    a, b = nb201.to_string(A), nb201.to_string(B)
    replies = _answer(host, [[a], ["|bad|"], [b, a]])
    assert "malformed NB201 architecture" in replies[1]["error"]  # fails only its own request
    first, (second, again) = replies[0]["ok"][0], replies[2]["ok"]
    assert again == first  # one architecture twice in a batch is trained and scored once
    assert (first["metrics"]["weight_version"], second["metrics"]["weight_version"]) == (2, 4)
    assert host.version == 4
