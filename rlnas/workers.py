"""Where supernet evaluations run: in this process, in a worker process that owns the
device, or on a pool of Ray actors. All three answer ``evaluate(archs) -> list[Evaluation]``.

``process`` (the default) spawns one worker (``torch.multiprocessing``, spawn start
method) that owns the supernet and the device. It listens on a Unix socket guarded by a
random key; a :class:`WorkerClient` is a small picklable handle, so every process that
holds one (an ``AsyncVectorEnv`` worker, say) sends architectures to the same weights.
Messages are JSON, never pickles. Requests that arrive together are answered as one batch.
A supervisor thread restarts a worker that dies; the worker reloads its checkpoint and
the client resends its pending request once.

``ray`` runs :class:`TrainerHost` as Ray actors, one per GPU (or per CPU slot), on a local
Ray or the cluster at ``address``; the driver keeps the checkpoint.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from multiprocessing.connection import Client, Connection, Listener, wait
from pathlib import Path
from typing import Any

from rlnas import checkpoint as checkpoints
from rlnas.store import Evaluation
from rlnas.supernet import SupernetTrainer

BACKENDS = ("inline", "process", "ray")


class Checkpointer:
    """When to save: after the first batch, then whenever the weights have moved and
    ``every`` evaluations have passed since the last save."""

    def __init__(self, path: str | Path | None, every: int = 1):
        if every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {every}")
        self.path, self.every = (Path(path) if path else None), every
        self._saved_version: int | None = None
        self._unsaved = 0

    def load(self) -> dict[str, Any] | None:
        return checkpoints.load(self.path) if self.path and self.path.is_file() else None

    def due(self, evaluations: int, version: int) -> bool:
        self._unsaved += evaluations
        if version == self._saved_version or (self._saved_version is not None and self._unsaved < self.every):
            return False
        self._saved_version, self._unsaved = version, 0
        return True

    def save(self, state: dict[str, Any]) -> None:
        if self.path is not None:
            checkpoints.save(state, self.path)


class TrainerHost:
    """A :class:`SupernetTrainer` with its checkpoint: it starts from ``state``, else from
    the checkpoint file, else warms up; it answers batches, each distinct architecture
    once. It is the ``inline`` backend, and what the worker process and each Ray actor run."""

    def __init__(self, trainer_kwargs: dict[str, Any], checkpoint: str | Path | None = None,
                 checkpoint_every: int = 1, state: dict[str, Any] | None = None):
        self._checkpointer = Checkpointer(checkpoint, checkpoint_every)
        self.trainer = SupernetTrainer(**trainer_kwargs)
        state = state if state is not None else self._checkpointer.load()
        if state is not None:
            self.trainer.load_state_dict(state)
        self.trainer.warm_up()
        self._save_if_due(0)

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        answers: dict[str, Evaluation] = {}
        for arch in archs:
            if arch not in answers:
                answers[arch] = self.trainer.evaluate(arch)
        self._save_if_due(len(archs))
        return [answers[arch] for arch in archs]

    def _save_if_due(self, evaluations: int) -> None:
        if self._checkpointer.due(evaluations, self.trainer.version):
            self._checkpointer.save(self.trainer.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return self.trainer.state_dict()

    @property
    def version(self) -> int:
        return self.trainer.version

    def close(self) -> None:
        """Nothing to release: the trainer lives in this process."""


# ---------------------------------------------------------------------------------------
# One worker process
# ---------------------------------------------------------------------------------------
class WorkerError(RuntimeError):
    """The worker could not answer (it died twice, or never came up)."""


class WorkerClient:
    """A picklable handle on the worker. Each process connects on first use."""

    def __init__(self, address: str, authkey: bytes, timeout: float = 600.0):
        self.address, self.authkey, self.timeout = address, authkey, timeout
        self._conn: Connection | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"address": self.address, "authkey": self.authkey, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def _connect(self) -> Connection:
        if self._conn is None or self._pid != os.getpid():
            deadline = time.monotonic() + self.timeout
            while True:  # a restarted worker takes a moment to listen again
                try:
                    self._conn = Client(self.address, "AF_UNIX", authkey=self.authkey)
                    break
                # reset or EOF: we reached the listening socket of a worker killed an instant
                # ago, which the kernel closes with our connection still in its backlog
                except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, EOFError) as err:
                    if time.monotonic() > deadline:
                        raise WorkerError(f"no evaluator worker at {self.address} after {self.timeout:.0f} s") from err
                    time.sleep(0.05)
            self._pid = os.getpid()
        return self._conn

    def request(self, message: dict[str, Any]) -> Any:
        """Send one message and wait for its answer; if the worker dies meanwhile, send it
        once more to the restarted worker."""
        for attempt in range(2):
            try:
                conn = self._connect()
                conn.send_bytes(json.dumps(message).encode())
                reply = json.loads(conn.recv_bytes())
                break
            except (EOFError, OSError) as err:
                self._conn = None
                if attempt == 1:
                    raise WorkerError(f"the evaluator worker died twice answering {message}") from err
        if "error" in reply:
            raise (ValueError if reply["type"] == "ValueError" else WorkerError)(reply["error"])
        return reply["ok"]

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        return [Evaluation(**e) for e in self.request({"op": "evaluate", "archs": list(archs)})]

    def stats(self) -> dict[str, Any]:
        return self.request({"op": "stats"})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def serve(address: str, authkey: bytes, trainer_kwargs: dict[str, Any], checkpoint: str | None,
          checkpoint_every: int, parent_pid: int, ready: Any) -> None:
    """The worker's main loop: accept clients, batch what they send, answer each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the owner's to handle; it stops us
    if os.path.exists(address):
        os.unlink(address)
    listener = Listener(address, "AF_UNIX", authkey=authkey)
    ready.set()
    conns: list[Connection] = []
    lock = threading.Lock()

    def accept() -> None:
        while True:
            try:
                conn = listener.accept()
            except OSError:
                continue  # a client that failed authentication
            with lock:
                conns.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        host = TrainerHost(trainer_kwargs, checkpoint, checkpoint_every)
        broken = None
    except Exception as err:  # every client hears why, instead of a silent restart loop
        host, broken = None, {"error": f"the evaluator worker could not start: {type(err).__name__}: {err}",
                              "type": "WorkerError"}
    served, clients = 0, set()
    while os.getppid() == parent_pid:  # an orphaned worker exits
        with lock:
            current = list(conns)
        if not current:
            time.sleep(0.01)
            continue
        requests = []
        for conn in wait(current, timeout=0.1):
            try:
                requests.append((conn, json.loads(conn.recv_bytes())))
            except (EOFError, OSError):
                with lock:
                    conns.remove(conn)
                conn.close()
        batch = [(conn, msg["archs"]) for conn, msg in requests if msg["op"] == "evaluate"]
        replies = [broken] * len(batch) if broken else _answer(host, [archs for _, archs in batch])
        for (conn, _), reply in zip(batch, replies, strict=True):
            conn.send_bytes(json.dumps(reply).encode())
        served += len(batch)
        clients |= {id(conn) for conn, _ in batch}
        for conn, msg in requests:
            if msg["op"] == "stats":
                conn.send_bytes(json.dumps({"ok": {"pid": os.getpid(), "requests": served, "clients": len(clients),
                                                   "weight_version": host and host.version}}).encode())


def _answer(host: TrainerHost, requests: list[list[str]]) -> list[dict[str, Any]]:
    """Answer concurrent requests as one batch. A malformed architecture fails only its own
    request; anything else that goes wrong fails the batch, and the worker lives on."""
    replies: list[dict[str, Any] | None] = [None] * len(requests)
    for i, archs in enumerate(requests):
        try:
            for arch in archs:
                host.trainer.space.from_string(arch)
        except (ValueError, TypeError) as err:
            replies[i] = {"error": str(err), "type": "ValueError"}
    valid = [i for i, reply in enumerate(replies) if reply is None]
    try:
        results = iter(host.evaluate([arch for i in valid for arch in requests[i]]))
    except Exception as err:  # reported to the clients: the worker lives on
        return [reply or {"error": f"{type(err).__name__}: {err}", "type": type(err).__name__} for reply in replies]
    for i in valid:
        replies[i] = {"ok": [asdict(next(results)) for _ in requests[i]]}
    return replies


class ProcessBackend:
    """Owns the worker process: starts it, restarts it when it dies, stops it on close."""

    def __init__(self, trainer_kwargs: dict[str, Any], checkpoint: str | Path | None = None,
                 checkpoint_every: int = 1, timeout: float = 600.0):
        import torch.multiprocessing as mp

        self._ctx = mp.get_context("spawn")
        self._dir = tempfile.mkdtemp(prefix="rlnas-worker-")
        address = os.path.join(self._dir, "socket")
        self._args = (address, secrets.token_bytes(32), trainer_kwargs,
                      str(checkpoint) if checkpoint else None, checkpoint_every, os.getpid())
        self.client = WorkerClient(address, self._args[1], timeout)
        self.restarts = 0
        self._closing = False
        self._start()
        threading.Thread(target=self._supervise, daemon=True).start()

    def _start(self) -> None:
        ready = self._ctx.Event()
        self.process = self._ctx.Process(target=serve, args=(*self._args, ready), daemon=True,
                                         name="rlnas-evaluator")
        self.process.start()
        while not ready.wait(0.1):
            if not self.process.is_alive():
                raise WorkerError(f"the evaluator worker exited with code {self.process.exitcode} while starting")

    def _supervise(self) -> None:
        while True:
            wait([self.process.sentinel])
            if self._closing:
                return
            self.restarts += 1
            self._start()

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        return self.client.evaluate(archs)

    def close(self) -> None:
        self._closing = True
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        shutil.rmtree(self._dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# A pool of Ray actors
# ---------------------------------------------------------------------------------------
def start_ray(address: str | None, num_cpus: int | None = None):
    """Ray, connected to the cluster at ``address`` or to a local Ray started here (with
    ``num_cpus`` slots); returns the module and whether this process started it (and so
    shuts it down)."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("evaluator.backend=ray needs Ray: pip install 'rlnas[ray]'") from err
    owns = not ray.is_initialized()
    if owns:
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
    return ray, owns


class RayBackend:
    """The same interface over ``workers`` Ray actors, each with its own copy of the weights.

    In ``oneshot`` mode the weights are frozen during search, so the actors start from one
    warmed-up state and score in parallel. ``enas`` mode trains one set of weights in the
    order architectures arrive, which a pool cannot do without diverging copies, so it
    takes exactly one actor.
    """

    def __init__(self, trainer_kwargs: dict[str, Any], checkpoint: str | Path | None = None,
                 checkpoint_every: int = 1, workers: int = 1, address: str | None = None):
        if workers < 1:
            raise ValueError(f"evaluator.workers must be >= 1, got {workers}")
        if trainer_kwargs.get("mode") == "enas" and workers != 1:
            raise ValueError("supernet mode=enas trains one set of shared weights in order; on Ray it needs "
                             f"workers=1 (got {workers}), or use mode=oneshot for a pool")
        self._ray, self._owns_ray = start_ray(address)
        gpu = str(trainer_kwargs.get("device", "cpu")).startswith("cuda")
        self._actor = self._ray.remote(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0)(TrainerHost)
        # The driver keeps the checkpoint (actors may run on other machines) and the state a
        # restarted actor starts from.
        self._kwargs = trainer_kwargs
        self._checkpointer = Checkpointer(checkpoint, checkpoint_every)
        first = self._actor.remote(trainer_kwargs, state=self._checkpointer.load())
        self._state = self._ray.get(first.state_dict.remote())
        if self._checkpointer.due(0, self._state["version"]):
            self._checkpointer.save(self._state)
        self.actors = [first] + [self._actor.remote(trainer_kwargs, state=self._state) for _ in range(workers - 1)]
        self.restarts = 0

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        ray = self._ray
        n = len(self.actors)
        chunks = [list(archs[i::n]) for i in range(n)]
        futures = [self.actors[i].evaluate.remote(chunk) if chunk else None for i, chunk in enumerate(chunks)]
        results: list[list[Evaluation]] = []
        for i, future in enumerate(futures):
            try:
                results.append(ray.get(future) if future else [])
            except ray.exceptions.RayActorError:  # restart the actor, retry its chunk once
                self.restarts += 1
                self.actors[i] = self._actor.remote(self._kwargs, state=self._state)
                results.append(ray.get(self.actors[i].evaluate.remote(chunks[i])))
        ordered = [results[i % n][i // n] for i in range(len(archs))]
        version = max(e.metrics["weight_version"] for e in ordered)
        if self._checkpointer.due(len(archs), version):  # only enas mode moves the weights
            self._state = ray.get(self.actors[0].state_dict.remote())
            self._checkpointer.save(self._state)
        return ordered

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)
        if self._owns_ray:
            self._ray.shutdown()


def make_backend(name: str, trainer_kwargs: dict[str, Any], checkpoint: str | Path | None = None,
                 checkpoint_every: int = 1, workers: int = 1, address: str | None = None):
    if name == "inline":
        return TrainerHost(trainer_kwargs, checkpoint, checkpoint_every)
    if name == "process":
        return ProcessBackend(trainer_kwargs, checkpoint, checkpoint_every)
    if name == "ray":
        return RayBackend(trainer_kwargs, checkpoint, checkpoint_every, workers, address)
    raise ValueError(f"unknown evaluator backend {name!r}; choose from {', '.join(BACKENDS)}")
