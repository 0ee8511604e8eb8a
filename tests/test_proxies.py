"""SynFlow, the zero-cost proxy the planner's prior comes from."""

import random

import pytest
import torch
from torch import nn

from rlnas.networks.proxies import nb201_cell_synflow, nb201_synflow, synflow
from rlnas.spaces import NB201Space


def test_synflow_by_hand_on_two_linear_layers():
    # |W| = [[1, 2], [3, 0.5]], |v| = [1, 2], input ones: R = 1 * (1 + 2) + 2 * (3 + 0.5) = 10.
    # R is homogeneous of degree 1 in each layer, so sum |theta dR/dtheta| = 2 R.
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
        model[1].weight.copy_(torch.tensor([[-1.0, 2.0]]))
    before = [p.clone() for p in model.parameters()]
    assert synflow(model, (2,)) == pytest.approx(20.0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # left as built
    assert all(p.grad is None for p in model.parameters())


def test_shipped_synflow_table_is_what_rlnas_computes():
    space = NB201Space()
    table = nb201_synflow()
    assert set(table) == {space.to_string(c) for c in space.all_cells()}
    for arch in random.Random(0).sample(sorted(table), 3):
        assert nb201_cell_synflow(arch) == pytest.approx(table[arch], rel=1e-9)
