"""Workers simulated in this process, calls run in order on one state: a search sees what
``workers`` equal workers would show it, reproducibly and without spare cores
(``benchmarks/nb201_search.py --parallel``); with one, a supernet's in-process home."""

from __future__ import annotations

from typing import Any

from rlnas.execution.pool import Pool, answer


class InlinePool(Pool):
    def __init__(self, *args: Any, **kwargs: Any):
        self._state: Any = None
        self._queue: list[tuple[int, str, str, tuple]] = []
        super().__init__(*args, **kwargs)

    def _start(self, index: int) -> None:
        if self._state is None:
            self._state = self.factory()

    def _send(self, index: int, key: str, method: str, args: tuple) -> None:
        self._queue.append((index, key, method, args))

    def _receive(self) -> list[tuple[int, tuple[str, bool, Any, float] | None]]:
        index, key, method, args = self._queue.pop(0)
        return [(index, answer(self._state, key, method, args))]

    def _stop(self, busy: set[int]) -> None:
        self._queue = []
        if self._state is not None and hasattr(self._state, "close"):
            self._state.close()
