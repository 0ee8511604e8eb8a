"""Processes that end with the one that started them: a SIGKILLed runner (the OOM killer,
a scheduler's hard stop) would leave its workers and trials running as orphans, holding the
cores and GPUs the resumed search needs. Standard library only: trial scripts import it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


def watch(parent: int, on_gone: Callable[[], None], every: float = 1.0) -> None:
    """Call ``on_gone`` from a daemon thread once process ``parent`` is gone, looking every
    ``every`` seconds: a direct child sees its parent id change; one further down (a trial
    under ``sh -c``) asks whether ``parent`` exists."""
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
