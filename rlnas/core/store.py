"""Durable evaluation store: every evaluation one SQLite row, committed before anyone sees
it. WAL mode keeps committed rows through a killed process; ``synchronous="FULL"`` survives
a power cut too, at one fsync per evaluation."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    evaluator TEXT NOT NULL,
    run TEXT,
    arch TEXT NOT NULL,
    score REAL NOT NULL,
    metrics TEXT NOT NULL,
    cost REAL NOT NULL,
    created REAL NOT NULL,
    UNIQUE (evaluator, arch)
)
"""


@dataclass(frozen=True)
class Evaluation:
    """One scored architecture: ``score`` the search signal (higher is better), ``metrics``
    the rest (e.g. ``test_acc``, never read by search), ``cost`` its seconds, ``cached`` true
    when a store answered it."""

    arch: str
    score: float
    metrics: dict[str, float] = field(default_factory=dict)
    cost: float = 0.0
    cached: bool = False


class EvaluationStore:
    """Evaluations keyed by (fingerprint, architecture), each naming the run that paid for it."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL"):
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        """Opened at first use, so building a run that then fails validation leaves no file."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
                conn.execute(SCHEMA)
            except sqlite3.DatabaseError as err:
                raise ValueError(f"{self.path} is not an rlnas evaluation store (SQLite): {err}") from err
            self._conn = conn
        return self._conn

    def get(self, evaluator: str, arch: str) -> Evaluation | None:
        row = self._db.execute(
            "SELECT arch, score, metrics, cost FROM evaluations WHERE evaluator=? AND arch=?",
            (evaluator, arch),
        ).fetchone()
        return None if row is None else Evaluation(row[0], row[1], json.loads(row[2]), row[3], True)

    def put(self, evaluator: str, evaluation: Evaluation, run: str | None = None, replace: bool = False) -> None:
        """Write and commit one evaluation; one this evaluator already scored is kept, or with
        ``replace`` (a failure run again) replaced."""
        self._db.execute(
            f"INSERT OR {'REPLACE' if replace else 'IGNORE'} INTO evaluations (evaluator, run, arch, score, metrics, "
            "cost, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (evaluator, run, evaluation.arch, evaluation.score, json.dumps(evaluation.metrics),
             evaluation.cost, time.time()),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]

    def history(self, evaluator: str | None = None, run: str | None = None) -> Iterator[Evaluation]:
        """Stored evaluations (optionally of one evaluator and / or one run), oldest first."""
        filters = [(col, val) for col, val in (("evaluator", evaluator), ("run", run)) if val]
        where = " AND ".join(f"{col}=?" for col, _ in filters)
        rows = self._db.execute(
            f"SELECT arch, score, metrics, cost FROM evaluations {'WHERE ' + where if where else ''} "
            "ORDER BY seq", [val for _, val in filters])
        for arch, score, metrics, cost in rows:
            yield Evaluation(arch, score, json.loads(metrics), cost, True)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
