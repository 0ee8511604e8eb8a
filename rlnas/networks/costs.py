"""What each NAS-Bench-201 cell costs: parameters and multiply-accumulates ("FLOPs").

The counts are our own builder's (:func:`rlnas.networks.cells.build_network`) on the benchmark's
CIFAR-10 skeleton (16 channels, 5 cells per stage, 32x32 inputs, 10 classes), counted by
:func:`~rlnas.networks.measure.count_parameters` and :func:`~rlnas.networks.measure.count_flops`. They
agree with the benchmark's published figures (the best cell of the CIFAR-10 table:
1,073,466 parameters, 153,272,960 multiply-accumulates; the all-3x3 cell: 1,531,546 and
220,119,680).

A cell's cost is the skeleton's (every edge ``none``) plus one term per edge and op: ops on
different edges share no weights and no multiply-accumulates, so 1 + 6 x 4 networks give all
15,625 cells exactly (the tests rebuild sampled cells whole and compare). A 100-class head
(CIFAR-100) adds the same 5,850 parameters and 5,760 multiply-accumulates to every cell, so
fronts and rankings do not change.

The table ships in the package; ``python -m rlnas.networks.costs`` writes it again.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import itertools
from collections.abc import Iterable
from importlib import resources
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
        costs[space.to_string(decisions)] = (base[0] + sum(t[0] for t in terms),
                                             base[1] + sum(t[1] for t in terms))
    return costs


@functools.cache
def nb201_costs() -> dict[str, tuple[int, int]]:
    """The shipped table: cell string -> (parameters, multiply-accumulates)."""
    return {row["arch_str"]: (int(row["params"]), int(row["flops"])) for row in read_shipped_table(NB201_COSTS)}


def read_shipped_table(name: str) -> list[dict[str, str]]:
    """The rows of a gzipped CSV table in ``rlnas/data``."""
    raw = resources.files("rlnas.data").joinpath(name).read_bytes()
    return list(csv.DictReader(io.StringIO(gzip.decompress(raw).decode())))


def write_table(path: Path, columns: tuple[str, ...], rows: Iterable[Iterable[object]]) -> None:
    """A gzipped CSV with the same bytes every time it is written from the same rows."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    path.write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))


def write_nb201_costs(path: Path) -> None:
    write_table(path, COST_COLUMNS, ((arch, *cost) for arch, cost in compute_nb201_costs().items()))


if __name__ == "__main__":
    target = Path(__file__).parent / "data" / NB201_COSTS
    write_nb201_costs(target)
    print(f"wrote {target}")
