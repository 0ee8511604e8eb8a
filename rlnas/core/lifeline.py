"""Processes that end with the one that started them.

A search runs evaluations in other processes: worker processes (:mod:`rlnas.execution.processes`)
and, with the trial evaluator, the user's script in a session of its own. Ctrl-C and
SIGTERM reach the runner, which takes them down on its way out. SIGKILL (the OOM killer, a
scheduler's hard stop) leaves it no way out, and they would run on as orphans holding
cores and GPUs that the resumed search needs. So each watches the process that started it.
Standard library only: trial scripts import it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


def watch(parent: int, on_gone: Callable[[], None], every: float = 1.0) -> None:
    """Call ``on_gone`` from a daemon thread once process ``parent`` is gone, looking every
    ``every`` seconds.

    A direct child is reparented the moment its parent dies, reaped or not, so it reads its
    parent id. A process further down (a trial started through ``sh -c``) asks whether
    ``parent`` still exists, which holds while a dead parent waits to be reaped.
    """
    direct = os.getppid() == parent

    def gone() -> bool:
        if direct:
            return os.getppid() != parent
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's process: it exists
            pass
        return False

    def loop() -> None:
        while not gone():
            time.sleep(every)
        on_gone()

    threading.Thread(target=loop, name="rlnas-lifeline", daemon=True).start()
