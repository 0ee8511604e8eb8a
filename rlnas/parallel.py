"""Many evaluations at once: a pool of workers that evaluate, and the asynchronous search
loop that keeps them busy.

:class:`EvaluationPool` runs the run's evaluator on ``workers`` workers: ``process`` (worker
processes on this machine, each pinned round-robin to one GPU when the evaluator runs on
CUDA, else sharing the cores) or ``ray`` (Ray tasks on a local Ray or a cluster). Each
worker builds the evaluator from the run's config, so nothing is pickled but plain data;
results come back as JSON. A worker that dies, or an evaluation that raises, is retried
once on a fresh worker and then recorded as failed (``metrics["failed"]`` the reason; it
earns the lowest score seen, :class:`~rlnas.evaluators.StoredEvaluator`): the search goes on.

Two ways to keep the workers busy:

* :class:`AsyncSearch`, for agents that can propose whole architectures
  (:class:`~rlnas.agents.architecture_agent.Proposer`: the NAS baselines, REINFORCE,
  Dreamer): it proposes as soon as a worker is free, so a slow child never holds the
  others back. A result is committed, then replayed through the env (answered by the
  store, so the monitor counts it once) and shown to the agent.
* :class:`LockStepEnvs`, for agents that step a vector env (PPO, A2C, DQN): one NASEnv per
  worker, stepped together; the architectures a step completes are evaluated at once, and
  the step waits for the slowest of them.

Either way the runner stays the single writer of the store, the budget is exact (nothing
evaluated beyond it) and two workers never train the same architecture.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import asdict
from multiprocessing.connection import Connection, wait
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import concatenate

from rlnas import lifeline
from rlnas.evaluators import StoredEvaluator
from rlnas.monitor import Budget
from rlnas.store import Evaluation

BACKENDS = ("process", "ray")
RETRIES = 1  # a dead worker's evaluation is tried once more, then recorded as failed
SPAWN = mp.get_context("spawn")  # a fresh interpreter per worker: no forked torch or CUDA state


def _build(spec: dict[str, Any]):
    from rlnas.config import build_evaluator, build_space

    return build_evaluator(spec["evaluator"], build_space(spec["env"]))


def _evaluate(evaluator, arch: str) -> dict[str, Any]:
    """One evaluation as JSON-able data, with the seconds it took on the worker; an
    exception becomes an error message."""
    start = time.perf_counter()
    try:
        answer: dict[str, Any] = {"ok": asdict(evaluator.evaluate(arch))}
    except Exception as err:
        answer = {"error": f"{type(err).__name__}: {err}"}
    return {**answer, "seconds": time.perf_counter() - start}


def _process_worker(conn: Connection, spec: dict[str, Any], environ: dict[str, str]) -> None:
    os.environ.update(environ)  # before torch initialises CUDA in this process
    # Stopped mid-evaluation (the pool closing on Ctrl-C or SIGTERM): unwind, so that the
    # evaluator cleans up on the way out (a trial takes its script down with it).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    # A runner SIGKILLed closes no pool: stop as on SIGTERM when it is gone.
    lifeline.watch(os.getppid(), lambda: os.kill(os.getpid(), signal.SIGTERM))
    evaluator = _build(spec)
    while True:
        try:
            arch = json.loads(conn.recv_bytes())
        except EOFError:  # the runner is gone (killed): nobody wants the answer
            break
        if arch is None:
            break
        conn.send_bytes(json.dumps(_evaluate(evaluator, arch)).encode())
    evaluator.close()


class _Slot:
    """One worker process and the evaluation it is running."""

    def __init__(self, spec: dict[str, Any], environ: dict[str, str]):
        parent, child = SPAWN.Pipe()
        self.process = SPAWN.Process(target=_process_worker, args=(child, spec, environ), daemon=True)
        self.process.start()
        child.close()
        self.conn, self.arch, self.attempt, self.started = parent, None, 0, 0.0


class EvaluationPool:
    """Evaluate the run's architectures on ``workers`` workers.

    Args:
        spec: the run's ``{"env": ..., "evaluator": ...}`` config, from which every worker
            builds its own evaluator.
        workers: how many evaluations run at once.
        backend: ``process`` or ``ray``.
        address: the Ray cluster (``auto`` for the one ``ray start`` made); None starts a
            local Ray for this run.
        gpus: GPUs to pin process workers to (round-robin); 0 for none.
    """

    def __init__(self, spec: dict[str, Any], workers: int, backend: str = "process", address: str | None = None,
                 gpus: int = 0):
        if backend not in BACKENDS:
            raise ValueError(f"unknown evaluator.backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"evaluator.workers must be a positive integer, got {workers!r}")
        self.spec, self.workers, self.backend, self.gpus = spec, workers, backend, gpus
        self.busy_seconds = 0.0
        # Per finished attempt: seconds from submit to its result in hand, less the time the
        # worker spent evaluating: waiting for a worker (Ray schedules tasks on what is free)
        # and for the runner to take the result.
        self.queue_waits: list[float] = []
        self._created = time.perf_counter()
        if backend == "process":
            self._slots = [self._spawn(i) for i in range(workers)]
        else:
            self._start_ray(address)

    # -- the interface the search loop uses ------------------------------------------------
    @property
    def in_flight(self) -> list[str]:
        if self.backend == "process":
            return [slot.arch for slot in self._slots if slot.arch is not None]
        return list(self._refs.values())

    @property
    def free(self) -> int:
        return self.workers - len(self.in_flight)

    def submit(self, arch: str) -> None:
        if self.free < 1:
            raise RuntimeError("submit() with every worker busy; wait for a result first")
        if arch in self.in_flight:
            raise RuntimeError(f"{arch} is already being evaluated")
        self._submit(arch, attempt=0)

    def wait(self) -> list[Evaluation]:
        """Block until at least one evaluation finishes (or fails for good); return those."""
        if not self.in_flight:
            raise RuntimeError("wait() with nothing in flight")
        while True:
            done = self._wait_process() if self.backend == "process" else self._wait_ray()
            if done:
                return done

    def utilisation(self) -> float:
        """Busy fraction of the workers since the pool started."""
        return self.busy_seconds / max(self.workers * (time.perf_counter() - self._created), 1e-9)

    def log(self, logger, step: int) -> None:
        """Busy fraction and queue wait (mean over the results since the last call) to TensorBoard."""
        logger.scalar("parallel/busy_fraction", self.utilisation(), step)
        if self.queue_waits:
            logger.scalar("parallel/queue_wait_s", sum(self.queue_waits) / len(self.queue_waits), step)
            self.queue_waits = []

    def close(self) -> None:
        if self.backend == "process":
            for slot in self._slots:
                if slot.arch is not None:  # busy: nobody will read its answer now
                    slot.process.terminate()
                with contextlib.suppress(OSError):
                    slot.conn.send_bytes(b"null")
            for slot in self._slots:
                slot.process.join(timeout=10)
                if slot.process.is_alive():
                    slot.process.kill()
            self._slots = []
        elif self._owns_ray:
            self._ray.shutdown()

    # -- shared ----------------------------------------------------------------------------
    def _submit(self, arch: str, attempt: int) -> None:
        if self.backend == "process":
            slot = next(s for s in self._slots if s.arch is None)
            slot.arch, slot.attempt, slot.started = arch, attempt, time.perf_counter()
            slot.conn.send_bytes(json.dumps(arch).encode())
        else:
            self._refs[self._task.remote(self.spec, arch)] = arch
            self._attempts[arch], self._started[arch] = attempt, time.perf_counter()

    def _finish(self, arch: str, attempt: int, started: float, answer: dict[str, Any]) -> Evaluation | None:
        """The evaluation, or None when it failed and is being retried."""
        elapsed = time.perf_counter() - started
        self.busy_seconds += answer.get("seconds", elapsed)
        self.queue_waits.append(max(elapsed - answer.get("seconds", elapsed), 0.0))
        if "ok" in answer:
            return Evaluation(**answer["ok"])
        if attempt < RETRIES:
            self._submit(arch, attempt + 1)
            return None
        return Evaluation(arch, 0.0, {"failed": f"{answer['error']} (tried {attempt + 1} times)"})

    # -- process backend -------------------------------------------------------------------
    def _spawn(self, index: int) -> _Slot:
        environ = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if self.gpus:
            environ["CUDA_VISIBLE_DEVICES"] = str(index % self.gpus)
        return _Slot(self.spec, environ)

    def _wait_process(self) -> list[Evaluation]:
        busy = [s for s in self._slots if s.arch is not None]
        ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy])
        done = []
        for i, slot in enumerate(self._slots):
            if slot.arch is None or (slot.conn not in ready and slot.process.sentinel not in ready):
                continue
            arch, attempt, started = slot.arch, slot.attempt, slot.started
            try:
                answer = json.loads(slot.conn.recv_bytes())
            except (EOFError, OSError):  # the worker died mid-evaluation: replace it
                slot.process.join(timeout=5)
                answer = {"error": f"worker process died (exit code {slot.process.exitcode})"}
                self._slots[i] = self._spawn(i)
            slot.arch = None
            evaluation = self._finish(arch, attempt, started, answer)
            if evaluation is not None:
                done.append(evaluation)
        return done

    # -- ray backend -----------------------------------------------------------------------
    def _start_ray(self, address: str | None) -> None:
        from rlnas.workers import start_ray

        self._ray, self._owns_ray = start_ray(address, num_cpus=self.workers)
        self._task = self._ray.remote(num_cpus=1, num_gpus=1 if self.gpus else 0, max_retries=0)(_ray_evaluate)
        self._refs: dict[Any, str] = {}
        self._attempts: dict[str, int] = {}
        self._started: dict[str, float] = {}

    def _wait_ray(self) -> list[Evaluation]:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        done = []
        for ref in ready:
            arch = self._refs.pop(ref)
            try:
                answer = self._ray.get(ref)
            except self._ray.exceptions.RayError as err:  # the worker or its node died
                answer = {"error": f"Ray worker lost: {type(err).__name__}"}
            evaluation = self._finish(arch, self._attempts.pop(arch), self._started.pop(arch), answer)
            if evaluation is not None:
                done.append(evaluation)
        return done


_RAY_EVALUATORS: dict[str, Any] = {}  # per Ray worker process: built once per spec


def _ray_evaluate(spec: dict[str, Any], arch: str) -> dict[str, Any]:
    key = json.dumps(spec, sort_keys=True)
    if key not in _RAY_EVALUATORS:
        _RAY_EVALUATORS[key] = _build(spec)
    return _evaluate(_RAY_EVALUATORS[key], arch)


class LockStepEnvs(gym.vector.SyncVectorEnv):
    """NASEnvs stepped together (``AutoresetMode.SAME_STEP``), their evaluations done at once.

    Before a step, ``settle(archs)`` gets the distinct architectures the step completes; it
    evaluates those the budget still pays for (on the pool, :func:`evaluate_all`), commits
    them to the store and returns them; the sub-envs' terminal steps then find them there.
    Lock-step: a step waits for its slowest child, and workers idle while their envs are
    mid-cell (``parallel/busy_fraction`` shows the cost; ``docs/results.md`` measures it).
    An episode whose architecture the budget does not pay for is cut instead of evaluated
    (``truncated``, reward 0, ``info["over_budget"]``), so the budget is exact; agents stop
    at the budget, before learning from a cut episode.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], settle: Callable[[list[str]], list[str]]):
        super().__init__(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        self.settle = settle

    def step(self, actions):
        actions = np.asarray(actions)
        completing = {}  # sub-env -> the architecture its action completes
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            nas, action = env.unwrapped, int(action)
            if len(nas.decisions) + 1 == nas.space.num_decisions and action in nas.space.legal_choices(nas.decisions):
                completing[i] = nas.space.to_string((*nas.decisions, action))
        paid = set(self.settle(list(dict.fromkeys(completing.values()))))

        infos: dict[str, Any] = {}
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            if i in completing and completing[i] not in paid:
                cut = {"action_mask": np.zeros(self.single_action_space.n, np.int8), "over_budget": True}
                result = (self._env_obs[i], 0.0, False, True, cut)
            else:
                result = env.step(action)
            self._env_obs[i], self._rewards[i], self._terminations[i], self._truncations[i], info = result
            if self._terminations[i] or self._truncations[i]:
                infos = self._add_info(infos, {"final_obs": self._env_obs[i], "final_info": info}, i)
                self._env_obs[i], info = env.reset()
            infos = self._add_info(infos, info, i)
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        return (deepcopy(self._observations), np.copy(self._rewards), np.copy(self._terminations),
                np.copy(self._truncations), infos)


def evaluate_all(pool: EvaluationPool, stored: StoredEvaluator, archs: Sequence[str]) -> None:
    """Evaluate on ``pool`` those of ``archs`` the store lacks, at once, and commit them."""
    for arch in archs:
        if stored.lookup(arch) is None:
            pool.submit(arch)
    while pool.in_flight:
        for evaluation in pool.wait():
            stored.record(evaluation)


class SimulatedPool:
    """``workers`` workers of equal speed, simulated in this process: evaluations run one
    after another and come back in the order they were submitted. A search driven through
    it sees exactly what it would see with that many equal workers (each proposal made with
    ``workers - 1`` others still out), reproducibly and without spare cores: what
    ``benchmarks/nb201_search.py --parallel`` measures the price of proposing ahead with.
    """

    def __init__(self, evaluator, workers: int):
        self.evaluator, self.workers = evaluator, workers
        self.in_flight: list[str] = []

    @property
    def free(self) -> int:
        return self.workers - len(self.in_flight)

    def submit(self, arch: str) -> None:
        if self.free < 1:
            raise RuntimeError("submit() with every worker busy; wait for a result first")
        self.in_flight.append(arch)

    def wait(self) -> list[Evaluation]:
        return [self.evaluator.evaluate(self.in_flight.pop(0))]


class AsyncSearch:
    """Drive an architecture-proposing agent with ``pool.workers`` evaluations in flight.

    Before each proposal the agent's ``in_flight`` holds what is being evaluated, so an
    agent that reads it proposes something else; a proposal of an architecture in flight
    waits for that result (a free repeat), one already in the store is answered at once.
    """

    def __init__(self, agent, pool: EvaluationPool | SimulatedPool, stored: StoredEvaluator):
        self.agent, self.pool, self.stored = agent, pool, stored
        self.space = agent.nas_env().space
        self.waiting: dict[str, list[tuple[int, ...]]] = {}  # arch -> its proposals; the first is submitted

    def in_flight(self) -> list[list[int]]:
        """What is being evaluated, for the checkpoint: a resumed run evaluates it again."""
        return [list(proposals[0]) for proposals in self.waiting.values()]

    def learn(self, budget: Budget, callback: Callable[[Any], None] | None = None,
              resumed: Sequence[Sequence[int]] = ()) -> None:
        """Search until the budget is spent; ``resumed`` is :meth:`in_flight` of a killed
        run's checkpoint. ``callback(agent)`` runs after every result, before anything new
        is proposed: the runner checkpoints there."""
        agent, pool = self.agent, self.pool
        for decisions in resumed:
            self._offer(tuple(decisions))
        exhausted = False
        while True:
            repeats = 0  # proposals of what is in flight: they wait, and the agent learns nothing meanwhile
            while pool.free and self._room(budget) and not exhausted:
                decisions = agent.propose()
                if decisions is None:
                    exhausted = True  # the agent has nothing left to try
                    break
                repeats += self._offer(tuple(decisions)) == "waits"
                if repeats >= pool.workers:
                    break  # let a result change the agent before it proposes more of the same
            if not self.waiting:
                return
            for evaluation in pool.wait():
                self.stored.record(evaluation)
                self._settle(self.waiting.pop(evaluation.arch))
                if callback is not None:
                    callback(agent)

    def _room(self, budget: Budget) -> bool:
        """Whether another evaluation fits: done + in flight stays within the budget."""
        env = self.agent.env
        return env.within(budget) and (budget.evaluations is None
                                       or len(env.evaluations) + len(self.waiting) < budget.evaluations)

    def _offer(self, decisions: tuple[int, ...]) -> str:
        """Send a proposal on its way: ``"submitted"`` (a new evaluation), ``"stored"``
        (evaluated before: answered free, now) or ``"waits"`` (in flight: answered with it)."""
        arch = self.space.to_string(decisions)
        if arch in self.waiting:
            self.waiting[arch].append(decisions)
            return "waits"
        if self.stored.lookup(arch) is not None:
            self._settle([decisions])
            return "stored"
        self.waiting[arch] = [decisions]
        self.agent.in_flight.add(decisions)
        self.pool.submit(arch)
        return "submitted"

    def _settle(self, proposals: list[tuple[int, ...]]) -> None:
        """Replay each proposal through the env (the store answers it: the monitor counts the
        first as this run's evaluation, the others as repeats) and show the agent its score."""
        for decisions in proposals:
            self.agent.in_flight.discard(decisions)
            self.agent.observe(decisions, self.agent.play(decisions))
