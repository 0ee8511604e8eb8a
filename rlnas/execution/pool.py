"""The pool interface: ``workers`` workers, each built once by ``factory()``.

``submit(key, method, *args)`` hands a call to a free worker; ``wait()`` returns the
:class:`Outcome` of those done. A call that raises or whose worker dies is retried on a
fresh worker ``retries`` times, then comes back as an error. A backend implements four
hooks (start, send, receive, stop); this class keeps the books.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rlnas.core.settings import Component


@dataclass
class BackendConfig(Component):
    """Where workers run (the ``backend`` config group)."""

    group: ClassVar[str] = "backend"
    kind: ClassVar[str] = "backend"


@dataclass
class Outcome:
    """A call done: its ``value``, or its final ``error``; ``seconds`` of its last attempt."""

    key: str
    value: Any = None
    error: str | None = None
    seconds: float = 0.0


@dataclass
class _Call:
    method: str
    args: tuple
    worker: int
    attempt: int = 0
    started: float = field(default_factory=time.perf_counter)


def answer(state: Any, key: str, method: str, args: tuple) -> tuple[str, bool, Any, float]:
    """Run one call on a worker's state: ``(key, ok, value or error message, seconds)``."""
    start = time.perf_counter()
    try:
        return key, True, getattr(state, method)(*args), time.perf_counter() - start
    except Exception as err:
        return key, False, f"{type(err).__name__}: {err}", time.perf_counter() - start


class Pool(ABC):
    """Base of every backend; ``gpus`` to pin workers to, ``threads`` torch threads each."""

    Config: ClassVar[type[BackendConfig]] = BackendConfig

    def __init__(self, factory: Callable[[], Any], workers: int, config: BackendConfig | None = None,
                 gpus: int = 0, threads: int | None = 1, retries: int = 1):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"a pool needs workers >= 1, got {workers!r}")
        self.factory, self.workers, self.gpus, self.threads, self.retries = factory, workers, gpus, threads, retries
        self.config = config or type(self).Config(name=getattr(self, "name", ""))
        self.busy_seconds = 0.0
        # Per finished attempt: seconds from hand-over to its result in hand, less the time the
        # worker spent on it: waiting for a worker (Ray schedules on what is free) and for us.
        self.queue_waits: list[float] = []
        self._calls: dict[str, _Call] = {}
        self._created = time.perf_counter()
        for index in range(workers):
            self._start(index)

    # -- the interface -------------------------------------------------------------------
    @property
    def in_flight(self) -> list[str]:
        return list(self._calls)

    @property
    def free(self) -> int:
        return self.workers - len(self._calls)

    def submit(self, key: str, method: str, *args: Any) -> None:
        if self.free < 1:
            raise RuntimeError("submit() with every worker busy; wait for a result first")
        if key in self._calls:
            raise RuntimeError(f"{key} is already in flight")
        self._hand_over(key, _Call(method, args, self._idle_worker()))

    def wait(self) -> list[Outcome]:
        """Block until at least one call is done for good; return those."""
        if not self._calls:
            raise RuntimeError("wait() with nothing in flight")
        while True:
            done = [outcome for worker, reply in self._receive() if (outcome := self._settle(worker, reply))]
            if done:
                return done

    def call(self, method: str, *args: Any) -> Any:
        """One call on a free worker, waited for: its value, or ``RuntimeError`` with why."""
        key = f"call-{time.perf_counter_ns()}"
        self.submit(key, method, *args)
        while True:
            for outcome in self.wait():
                if outcome.key == key:
                    if outcome.error is not None:
                        raise RuntimeError(outcome.error)
                    return outcome.value

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
        """Stop every worker; one still busy is stopped as on SIGTERM (a trial it runs goes down with it)."""
        self._stop({call.worker for call in self._calls.values()})
        self._calls = {}

    # -- the books -----------------------------------------------------------------------
    def _idle_worker(self) -> int:
        busy = {call.worker for call in self._calls.values()}
        return next(i for i in range(self.workers) if i not in busy)

    def _hand_over(self, key: str, call: _Call) -> None:
        self._calls[key] = call
        call.started = time.perf_counter()
        self._send(call.worker, key, call.method, call.args)

    def _settle(self, worker: int, reply: tuple[str, bool, Any, float] | None) -> Outcome | None:
        """The outcome of ``worker``'s call (``reply`` None: it died), or None if retried."""
        key = next(k for k, call in self._calls.items() if call.worker == worker)
        call = self._calls.pop(key)
        elapsed = time.perf_counter() - call.started
        if reply is None:
            self._start(worker)
            ok, value, seconds = False, "the worker died (killed, or out of memory)", elapsed
        else:
            _, ok, value, seconds = reply
        self.busy_seconds += seconds
        self.queue_waits.append(max(elapsed - seconds, 0.0))
        if ok:
            return Outcome(key, value, None, seconds)
        if call.attempt < self.retries:
            self._hand_over(key, _Call(call.method, call.args, worker, call.attempt + 1))
            return None
        return Outcome(key, None, f"{value} (tried {call.attempt + 1} times)", seconds)

    # -- what a backend does -------------------------------------------------------------
    @abstractmethod
    def _start(self, index: int) -> None:
        """Start worker ``index`` (again, if it died), building its state with ``factory``."""

    @abstractmethod
    def _send(self, index: int, key: str, method: str, args: tuple) -> None:
        """Hand worker ``index`` one call."""

    @abstractmethod
    def _receive(self) -> list[tuple[int, tuple[str, bool, Any, float] | None]]:
        """Block until a busy worker answers or dies: ``(index, reply or None)`` each."""

    @abstractmethod
    def _stop(self, busy: set[int]) -> None:
        """Stop every worker, ``busy`` ones without waiting for their calls."""
