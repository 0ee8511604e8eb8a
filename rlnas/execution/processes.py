"""Worker processes: one spawned interpreter each (no forked torch or CUDA state), pinned
round-robin to the GPUs, over ``multiprocessing`` pipes. A worker stopped mid-call unwinds
(a trial takes its script down with it), within a second of a SIGKILLed parent too."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from rlnas.core import lifeline
from rlnas.execution.pool import Pool, answer

SPAWN = mp.get_context("spawn")


def _serve(conn: Connection, factory: Callable[[], Any]) -> None:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    lifeline.watch(os.getppid(), lambda: os.kill(os.getpid(), signal.SIGTERM))
    state = factory()
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the pool is gone: nobody wants the answer
            break
        if message is None:
            break
        conn.send(answer(state, *message))
    if hasattr(state, "close"):
        state.close()


@contextlib.contextmanager
def _environment(changes: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``changes`` while a worker is spawned, as it was afterwards."""
    before = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class ProcessPool(Pool):
    def __init__(self, *args: Any, **kwargs: Any):
        self._workers: dict[int, tuple[Any, Connection]] = {}
        super().__init__(*args, **kwargs)

    def _start(self, index: int) -> None:
        environ = {} if self.threads is None else {"OMP_NUM_THREADS": str(self.threads),
                                                   "MKL_NUM_THREADS": str(self.threads)}
        if self.gpus:
            environ["CUDA_VISIBLE_DEVICES"] = str(index % self.gpus)
        parent, child = SPAWN.Pipe()
        process = SPAWN.Process(target=_serve, args=(child, self.factory), daemon=True, name=f"rlnas-worker-{index}")
        with _environment(environ):  # the worker's from its first instruction: torch reads it at import
            process.start()
        child.close()
        self._workers[index] = (process, parent)

    def _send(self, index: int, key: str, method: str, args: tuple) -> None:
        self._workers[index][1].send((key, method, args))

    def _receive(self) -> list[tuple[int, tuple[str, bool, Any, float] | None]]:
        busy = {call.worker for call in self._calls.values()}
        ready = set(wait([w for i in busy for w in (self._workers[i][1], self._workers[i][0].sentinel)]))
        done: list[tuple[int, tuple[str, bool, Any, float] | None]] = []
        for index in busy:
            process, conn = self._workers[index]
            if conn in ready or process.sentinel in ready:
                try:
                    done.append((index, conn.recv()))
                except (EOFError, OSError):  # died mid-call
                    process.join(5)
                    done.append((index, None))
        return done

    def _stop(self, busy: set[int]) -> None:
        for index, (process, conn) in self._workers.items():
            if index in busy:  # nobody will read its answer now
                process.terminate()
            with contextlib.suppress(OSError):
                conn.send(None)
        for process, _ in self._workers.values():
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        self._workers = {}
