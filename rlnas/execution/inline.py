"""Workers simulated in this process: calls run one after another, in the order they were
handed over, on one state built here.

A search driven through ``workers`` of them sees what it would see with that many equal
workers (each proposal made with ``workers - 1`` others still out), reproducibly and
without spare cores: ``benchmarks/nb201_search.py --parallel`` measures the price of
proposing ahead with it. With one worker it is where a supernet lives when it needs no
process of its own.
"""

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
