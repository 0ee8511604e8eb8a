import pytest
import torch
from torch import nn

from rlnas.networks.cells import build_network
from rlnas.networks.measure import count_flops, count_parameters
from rlnas.spaces import NASNetSpace


def test_nb201_network_shapes_and_size(nb201):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    model = build_network(nb201, arch, in_channels=3, num_classes=10, channels=16, cells_per_stage=5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # NAS-Bench-201 reports 1.073 M parameters and 153.3 M FLOPs for its best CIFAR-10 cells;
    # our skeleton is the benchmark's, so it must land on the same size.
    assert count_parameters(model) / 1e6 == pytest.approx(1.07, abs=0.02)
    assert count_flops(model, (3, 32, 32)) / 1e6 == pytest.approx(153.0, rel=0.02)


def test_nb201_none_cell_carries_nothing(nb201):
    model = build_network(nb201, (0,) * 6, in_channels=1, num_classes=3, channels=4, cells_per_stage=1)
    model.eval()
    cell = model.features[2]
    assert torch.equal(cell(torch.randn(1, 4, 8, 8)), torch.zeros(1, 4, 8, 8))


def test_nasnet_network_shapes(nasnet):
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(5):
        decisions = nasnet.sample(rng)
        model = build_network(nasnet, decisions, in_channels=1, num_classes=10, channels=8, cells_per_stage=1)
        assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_nasnet_reduction_halves_resolution_and_concat_projects():
    space = NASNetSpace(num_blocks=2, ops=["identity", "conv_3x3"])
    arch = "normal=identity~0,conv_3x3~1,concat|identity~2,identity~1,add;" \
           "reduce=conv_3x3~0,identity~1,add|identity~2,conv_3x3~2,concat"
    model = build_network(space, arch, in_channels=1, num_classes=4, channels=4, cells_per_stage=1)
    shapes = []
    model.cells[1].register_forward_hook(lambda m, i, o: shapes.append(o.shape))
    model(torch.randn(1, 1, 8, 8))
    assert shapes == [(1, 8, 4, 4)]  # one loose end of 2 x 4 channels at half resolution
    assert "0" not in model.cells[1].merges and "1" in model.cells[1].merges


def test_count_flops_by_hand():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(32, 5))
    # conv: 2 output channels x 16 pixels x 9 taps; linear: 5 x 32
    assert count_flops(model, (1, 4, 4)) == 2 * 16 * 9 + 5 * 32
    assert count_parameters(model) == 2 * 9 + 2 + 32 * 5 + 5


def test_bad_network_arguments(nb201):
    with pytest.raises(ValueError, match="channels must be >= 1.*channels=0"):
        build_network(nb201, (0,) * 6, channels=0)
    with pytest.raises(ValueError, match="malformed NB201"):
        build_network(nb201, "|bogus|")


def test_recalibrate_batchnorm_averages_batch_statistics_exactly():
    """Running stats become the plain average of per-batch mean and unbiased variance,
    over full batches in order; momentum and training mode come back as they were."""
    from rlnas.networks.measure import recalibrate_batchnorm

    model = nn.Sequential(nn.BatchNorm1d(2, momentum=0.3)).eval()
    model[0].running_mean.fill_(5.0)
    x = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 3.0], [8.0, 5.0], [1.0, 0.0], [3.0, 4.0], [100.0, 100.0]])
    recalibrate_batchnorm(model, x, batch_size=2)  # batches rows 0-1, 2-3, 4-5; row 6 is a short batch
    # per-batch means (1, 1), (6, 4), (2, 2); unbiased variances (2, 0), (8, 2), (2, 8)
    assert torch.allclose(model[0].running_mean, torch.tensor([3.0, 7.0 / 3.0]))
    assert torch.allclose(model[0].running_var, torch.tensor([4.0, 10.0 / 3.0]))
    assert model[0].momentum == 0.3 and not model.training
    recalibrate_batchnorm(model.train(), x[:3], batch_size=4)  # one short batch: it is all there is
    assert torch.allclose(model[0].running_mean, x[:3].mean(0)) and model.training
