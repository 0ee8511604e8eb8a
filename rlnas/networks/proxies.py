"""A zero-cost proxy: what a network's untrained weights say about how well it will train.

SynFlow (Tanaka et al. 2020; Abdelfattah et al. 2021) sums ``|theta * d(sum of outputs)/d
theta|`` over absolute weights on an all-ones input in double precision: no data, no
labels, a prior from the network itself. On the 12-epoch NB201 tables log SynFlow has
Spearman 0.43 (CIFAR-10) and 0.51 (CIFAR-100) with validation accuracy. Weights come from
``torch.manual_seed(0)``, so every machine computes the same table; it ships, and
``python -m rlnas.networks.proxies`` writes it again (about 11 minutes).
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn

from rlnas.networks.costs import read_shipped_table, shipped, write_table
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
    target = shipped(NB201_SYNFLOW)
    write_table(target, ("arch_str", "synflow"),
                ((space.to_string(c), repr(nb201_cell_synflow(space.to_string(c)))) for c in space.all_cells()))
    print(f"wrote {target}")
