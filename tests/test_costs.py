"""The NB201 cost table: what the builder counts, for every cell, and the benchmark's figures."""

import itertools
import random

import pytest

from rlnas.costs import nb201_costs
from rlnas.networks import build_network, count_flops, count_parameters
from rlnas.spaces import NB201Space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
ALL_3X3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_table_covers_every_cell_once():
    costs = nb201_costs()
    every = {NB201Space().to_string(d) for d in itertools.product(range(5), repeat=6)}
    assert len(costs) == 15625 and set(costs) == every


def test_the_benchmarks_published_figures_hold():
    """NAS-Bench-201 gives 1.07 M parameters and 153.27 M FLOPs for its best CIFAR-10 cell,
    1.53 M and 220.11 M for the all-3x3 cell; the empty cell is the skeleton alone."""
    costs = nb201_costs()
    assert costs[BEST] == (1_073_466, 153_272_960)
    assert costs[ALL_3X3] == (1_531_546, 220_119_680)
    assert min(costs.values()) == costs["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]


@pytest.mark.parametrize("seed", range(4))
def test_sampled_cells_match_the_builder_exactly(seed):
    space = NB201Space()
    arch = space.to_string([random.Random(seed).randrange(5) for _ in range(6)])
    model = build_network(space, arch)
    assert nb201_costs()[arch] == (count_parameters(model), count_flops(model, (3, 32, 32)))
