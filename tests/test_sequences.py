"""Behaviour that no refactor may move: every agent's first 30 evaluations through
``train.py``, on NB201 and on the HPO env over the SVC example, replayed against the
fixture recorded before the code was reshaped (``tests/fixtures/record_sequences.py``).
A change meant to move a sequence re-records the fixture and names it in its commit."""

import json
import sqlite3
from pathlib import Path

import pytest

from rlnas.cli.train import compose
from rlnas.search.runner import run

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "sequences.json").read_text())
SEARCHES = {
    "nb201": [],
    "hpo_svc": ["env=hpo", f"env.search_space={ROOT / 'examples' / 'digits_svc.json'}", "evaluator=function",
                "evaluator.fn=tests.objectives:recorded_svc_score", "env.levels=16"],  # recorded on the grid
}


def replay(agent: str, search: str, tmp_path: Path) -> list[list]:
    """The search ``train.py`` runs with these arguments, run in process (a subprocess costs 2 s more)."""
    run(compose([f"agent={agent}", "seed=0", "budget.evaluations=30", "quiet=true", *SEARCHES[search]]), tmp_path)
    with sqlite3.connect(tmp_path / "evaluations.sqlite") as db:
        return [[arch, score] for arch, score in db.execute("SELECT arch, score FROM evaluations ORDER BY seq")]


@pytest.mark.slow
@pytest.mark.parametrize(("search", "agent"), [(search, agent) for search in SEARCHES for agent in FIXTURE[search]])
def test_first_evaluations_are_as_recorded(search, agent, tmp_path):
    sequence = replay(agent, search, tmp_path)
    variants = FIXTURE[search][agent]
    assert sequence in variants, left_at(sequence, variants, f"{agent} on {search}")


def left_at(sequence: list[list], variants: list[list[list]], who: str) -> str:
    """Where ``sequence`` first leaves the recording, and with what, for the failure message."""
    first = min(next((i for i, (a, b) in enumerate(zip(sequence, v, strict=False)) if a != b), len(v))
                for v in variants)
    got = sequence[first] if first < len(sequence) else "nothing"
    return f"{who} left the recording at evaluation {first}: {got} instead of {variants[0][first]}"
