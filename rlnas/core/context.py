"""What a component needs to know about the run it serves, handed to it when it is made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunContext:
    """The run's seed, device, threads and directory (None outside a run: nothing is
    written), its early-stopping ``scheduler``, the ``dataset`` it trains on, and the
    ``backend`` a component that needs a worker of its own (the supernet's host) starts it
    on (None: worker processes)."""

    seed: int = 0
    device: str = "cpu"
    threads: int | None = 1
    run_dir: Path | None = None
    run_id: str | None = None
    scheduler: Any = None
    backend: Any = None
    dataset: Any = None  # the dataset group's settings (None: digits), for evaluators that train

    def path(self, name: str) -> Path | None:
        """``name`` in the run directory, or None outside a run."""
        return None if self.run_dir is None else Path(self.run_dir) / name
