"""A zero-cost proxy: what a network's untrained weights say about how well it will train.

SynFlow (Tanaka et al. 2020; as a NAS proxy, Abdelfattah et al. 2021) takes the absolute
value of every weight, feeds an all-ones input in double precision, and sums
``|theta * d(sum of outputs)/d theta|``. It needs no data and no labels, so it is a prior on
an architecture that comes from the network itself, not from any benchmark table. On the
12-epoch NB201 tables the log SynFlow of a cell has Spearman 0.43 (CIFAR-10) and 0.51
(CIFAR-100) with validation accuracy, and the 10 best cells of either table sit among its top
8 % (docs/benchmarks.md, "The planner's proxy").

Batch norm runs in eval mode with fresh statistics, so it scales by about one and SynFlow
sees the conv paths; the weights are those of ``torch.manual_seed(0)``, so every machine
computes the same table. A cell takes about 0.04 s on one core: the 15,625 NB201 cells ship
in the package, and ``python -m rlnas.networks.proxies`` writes them again (about 11 minutes).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import torch
from torch import nn

from rlnas.networks.costs import read_shipped_table, write_table
from rlnas.spaces import NB201Space

NB201_SYNFLOW = "nb201_synflow.csv.gz"


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """SynFlow of ``model`` as built (a copy is scored; ``model`` is left untouched)."""
    model = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model(torch.ones(1, *input_shape, dtype=torch.float64)).sum().backward()
    return sum((p * p.grad).abs().sum().item() for p in model.parameters() if p.grad is not None)


def nb201_cell_synflow(arch: str) -> float:
    """The shipped table's value for one cell, computed again."""
    from rlnas.networks.cells import build_network

    torch.manual_seed(0)
    return synflow(build_network(NB201Space(), arch), (3, 32, 32))


@functools.cache
def nb201_synflow() -> dict[str, float]:
    """The shipped table: cell string -> SynFlow on the CIFAR-10 skeleton."""
    return {row["arch_str"]: float(row["synflow"]) for row in read_shipped_table(NB201_SYNFLOW)}


if __name__ == "__main__":
    space = NB201Space()
    target = Path(__file__).parent / "data" / NB201_SYNFLOW
    write_table(target, ("arch_str", "synflow"),
                ((space.to_string(c), repr(nb201_cell_synflow(space.to_string(c)))) for c in space.all_cells()))
    print(f"wrote {target}")
