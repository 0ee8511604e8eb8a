"""The NB201 cost table: what the builder counts, for every cell, and the benchmark's figures."""

import itertools
import random
from pathlib import Path

import pytest

from rlnas.networks import costs, proxies
from rlnas.networks.cells import build_network
from rlnas.networks.costs import nb201_costs
from rlnas.networks.measure import count_flops, count_parameters
from rlnas.spaces import NB201Space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
ALL_3X3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_table_covers_every_cell_once():
    costs = nb201_costs()
    every = {NB201Space().to_string(d) for d in itertools.product(range(5), repeat=6)}
    assert len(costs) == 15625 and set(costs) == every


@pytest.mark.slow
def test_the_tables_are_written_again_where_they_ship():
    """``python -m rlnas.networks.costs`` (and proxies) write to rlnas/data, where the package reads them."""
    import subprocess
    import sys

    rlnas_data = Path(costs.__file__).parents[1] / "data"
    assert costs.shipped(costs.NB201_COSTS) == rlnas_data / "nb201_cifar10_costs.csv.gz"
    assert costs.shipped(proxies.NB201_SYNFLOW).is_file()
    before = costs.shipped(costs.NB201_COSTS).read_bytes()
    out = subprocess.run([sys.executable, "-m", "rlnas.networks.costs"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"wrote {rlnas_data / 'nb201_cifar10_costs.csv.gz'}"
    assert costs.shipped(costs.NB201_COSTS).read_bytes() == before  # the same counts, the same bytes


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


def test_latency_is_the_median_forward_time_with_its_noise():
    import time

    from torch import nn

    from rlnas.networks.measure import measure_latency

    class Sleeps(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            time.sleep(0.004)
            return x

    model = Sleeps().train()
    median, iqr = measure_latency(model, (1, 8, 8), batch=4, warmup=2, repeats=9)
    assert model.calls == 11 and model.training  # warm-up and repeats; the caller's mode restored
    assert 4.0 <= median < 50.0 and 0.0 <= iqr < median


def test_scratch_evaluator_reports_latency_when_asked():
    from rlnas.evaluators import ScratchEvaluator

    plain = ScratchEvaluator(NB201Space(), epochs=1, channels=4, cells_per_stage=1)
    timed = ScratchEvaluator(NB201Space(), epochs=1, channels=4, cells_per_stage=1, latency_batch=16)
    metrics = timed.evaluate(BEST).metrics
    assert metrics["latency_ms"] > 0 and metrics["latency_iqr_ms"] >= 0
    assert "latency_ms" not in plain.evaluate(BEST).metrics
    assert timed.fingerprint != plain.fingerprint  # a store's rows without latency do not answer it
    with pytest.raises(ValueError, match="latency_batch=0"):
        ScratchEvaluator(NB201Space(), latency_batch=0)
