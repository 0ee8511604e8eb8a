"""What each NAS-Bench-201 cell costs: parameters and multiply-accumulates ("FLOPs").

Counted on our own builder's CIFAR-10 skeleton, they agree with the benchmark's published
figures. Ops on different edges share nothing, so a cell's cost is the all-``none``
skeleton's plus one term per edge and op: 1 + 6 x 4 networks give all 15,625 cells exactly.
The table ships; ``python -m rlnas.networks.costs`` writes it again.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import itertools
from collections.abc import Iterable
from pathlib import Path

from rlnas.spaces import NB201Space

NB201_COSTS = "nb201_cifar10_costs.csv.gz"
COST_COLUMNS = ("arch_str", "params", "flops")


def compute_nb201_costs() -> dict[str, tuple[int, int]]:
    """Every cell's (parameters, multiply-accumulates), built and counted by rlnas."""
    from rlnas.networks.cells import build_network
    from rlnas.networks.measure import count_flops, count_parameters

    space = NB201Space()

    def counts(decisions: list[int]) -> tuple[int, int]:
        model = build_network(space, decisions)
        return count_parameters(model), count_flops(model, (3, 32, 32))

    empty = [0] * space.num_decisions
    base = counts(empty)
    extra = {}
    for edge, op in itertools.product(range(space.num_decisions), range(1, space.max_choices)):
        alone = counts(empty[:edge] + [op] + empty[edge + 1:])
        extra[edge, op] = (alone[0] - base[0], alone[1] - base[1])
    costs = {}
    for decisions in itertools.product(range(space.max_choices), repeat=space.num_decisions):
        terms = [extra[edge, op] for edge, op in enumerate(decisions) if op]
        costs[space.to_string(decisions)] = (base[0] + sum(t[0] for t in terms), base[1] + sum(t[1] for t in terms))
    return costs


@functools.cache
def nb201_costs() -> dict[str, tuple[int, int]]:
    """The shipped table: cell string -> (parameters, multiply-accumulates)."""
    return {row["arch_str"]: (int(row["params"]), int(row["flops"])) for row in read_shipped_table(NB201_COSTS)}


def shipped(name: str) -> Path:
    """Where table ``name`` ships: ``rlnas/data``."""
    return Path(__file__).parents[1] / "data" / name


def read_shipped_table(name: str) -> list[dict[str, str]]:
    """The rows of a gzipped CSV table in ``rlnas/data``."""
    return list(csv.DictReader(io.StringIO(gzip.decompress(shipped(name).read_bytes()).decode())))


def write_table(path: Path, columns: tuple[str, ...], rows: Iterable[Iterable[object]]) -> None:
    """A gzipped CSV with the same bytes every time it is written from the same rows."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    path.write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))


if __name__ == "__main__":
    target = shipped(NB201_COSTS)
    write_table(target, COST_COLUMNS, ((arch, *cost) for arch, cost in compute_nb201_costs().items()))
    print(f"wrote {target}")
