"""Model spaces in plain PyTorch: decisions counted by hand, the architecture's JSON, fixed
networks equal to hand-written ones, and a space module's path equal to its fixed network."""

import json
import random
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rlnas import nn as rnn
from rlnas.nn.space import load_factory

CNN = "examples/cnn_space.py:Net"


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = rnn.LayerChoice({"relu": nn.ReLU(), "gelu": nn.GELU()}, label="act")  # tied across blocks
        self.drop = rnn.Dropout(rnn.choice([0.0, 0.5]))  # one per block

    def forward(self, x):
        return self.drop(self.act(x))


class Hand(nn.Module):
    def __init__(self, num_classes: int = 3):
        super().__init__()
        w = rnn.choice([4, 8], label="w")
        self.a = rnn.Linear(5, w)
        self.op = rnn.LayerChoice([nn.ReLU(), nn.Tanh(), rnn.Linear(w, w)])
        self.pick = rnn.InputChoice(3, n_chosen=2, reduction="sum")
        self.blocks = rnn.Repeat(lambda i: Block(), depth=(1, 3))
        self.head = rnn.Linear(w, num_classes)

    def forward(self, x):
        h = self.a(x)
        return self.head(self.blocks(self.pick([h, self.op(h), -h])))


def test_a_hand_counted_space_has_its_decisions_in_order_with_their_labels_and_masks():
    space = rnn.model_space(Hand)
    assert space.decision_names() == ["w", "op", "pick[0]", "pick[1]", "blocks", "act", "blocks.0.drop.p",
                                      "blocks.1.drop.p", "blocks.2.drop.p"]
    assert [space.choice_names(s) for s in (0, 1, 4, 5)] == [["4", "8"], ["0", "1", "2"], ["1", "2", "3"],
                                                            ["relu", "gelu"]]
    # two of three inputs, picked in increasing order: the first leaves room for the second
    assert space.legal_choices([0, 0]) == range(0, 2)
    assert space.legal_choices([0, 0, 0]) == range(1, 3)
    assert space.legal_choices([0, 0, 1]) == range(2, 3)
    # a depth of 1 switches off the later blocks' rates: one legal action each
    depth_1, depth_3 = [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 2, 0, 0]
    assert space.legal_choices(depth_1) == range(1) and space.legal_choices(depth_1 + [0]) == range(1)
    assert space.legal_choices(depth_3) == range(2) and space.legal_choices(depth_3 + [1]) == range(2)
    # w 2 x op 3 x C(3, 2) x (act 2 x rates 2, 4 or 8 for depths 1 to 3)
    assert space.size == 2 * 3 * 3 * (2 * 2 + 2 * 4 + 2 * 8) == len(space.all_cells())
    assert space.to_arch((1, 2, 0, 2, 0, 1, 1, 0, 0)) == {"w": 8, "op": 2, "pick": [0, 2], "blocks": 1,
                                                         "act": "gelu", "blocks.0.drop.p": 0.5}


def test_building_a_space_leaves_torchs_generator_as_it_was():
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    rnn.model_space(Hand)
    assert torch.equal(torch.rand(1), expected)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_architecture_string_round_trips_in_any_key_order(seed):
    space = rnn.ModelSpace(CNN)
    decisions = space.sample(np.random.default_rng(seed))
    arch = space.to_string(decisions)
    assert space.from_string(arch) == decisions
    shuffled = list(json.loads(arch).items())
    random.Random(seed).shuffle(shuffled)
    assert space.from_string(json.dumps(dict(shuffled))) == decisions
    assert space.to_string(space.from_string(dict(shuffled))) == arch


@pytest.mark.parametrize(("arch", "message"), [
    ('{"w": 4}', "no value for 'op'"),
    ({"w": 5}, "sets 'w' to 5; allowed: one of [4, 8]"),
    ({"nope": 1}, "unknown label 'nope'"),
    ({"w": 4, "op": 0, "pick": [2, 1], "blocks": 1, "act": "relu", "blocks.0.drop.p": 0.0},
     "2 distinct increasing indices below 3"),
    ({"w": 4, "op": 0, "pick": [0, 1], "blocks": 1, "act": "relu", "blocks.0.drop.p": 0.0, "blocks.1.drop.p": 0.0},
     "'blocks.1.drop.p', which its depths switch off"),
    ("[1, 2]", "model: '[1, 2]' is not an architecture (a JSON mapping of label to choice)"),
    ("{oops", "'{oops' is not an architecture"),
])
def test_a_malformed_architecture_is_refused_saying_what_is_wrong(arch, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        rnn.model_space(Hand).from_string(arch)


def _conv_bn(w, k, groups=1):
    return nn.Sequential(nn.Conv2d(w, w, k, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(w), nn.ReLU())


class HandBlock(nn.Module):
    def __init__(self, op, residual):
        super().__init__()
        self.op, self.residual = op, residual

    def forward(self, x):
        h = self.op(x)
        return h + x if self.residual else h


class HandNet(nn.Module):
    """What the CNN example is at one architecture, written by hand."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.stage1 = nn.Sequential(HandBlock(_conv_bn(16, 5), True), HandBlock(_conv_bn(16, 5), False))
        self.pool = nn.MaxPool2d(2)
        self.stage2 = nn.Sequential(HandBlock(nn.Sequential(_conv_bn(16, 3, 16), _conv_bn(16, 1)), True))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.stage2(self.pool(self.stage1(self.stem(x)))).mean((2, 3)))


HAND_ARCH = {"width": 16, "stage1": 2, "stage1.op": "conv5x5", "stage1.0.residual": [1], "stage1.1.residual": [0],
             "stage2": 1, "stage2.op": "sep3x3", "stage2.0.residual": [1]}


def test_fixed_arch_is_the_hand_written_network():
    fixed = rnn.fixed_arch(load_factory(CNN), HAND_ARCH)
    hand = HandNet()
    assert sum(p.numel() for p in fixed.parameters()) == sum(p.numel() for p in hand.parameters())
    hand.load_state_dict(fixed.state_dict())  # strict: the same names and shapes
    x = torch.randn(4, 1, 8, 8)
    fixed.eval(), hand.eval()
    torch.testing.assert_close(fixed(x), hand(x))
    assert not any(isinstance(m, rnn.LayerChoice | rnn.InputChoice | rnn.Repeat | rnn.Conv2d) for m in fixed.modules())


def test_fixed_arch_is_initialised_from_torchs_generator():
    torch.manual_seed(0)
    a = rnn.fixed_arch(load_factory(CNN), json.dumps(HAND_ARCH)).state_dict()
    torch.manual_seed(0)
    b = rnn.fixed_arch(load_factory(CNN), HAND_ARCH).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


class Kernels(nn.Module):
    def __init__(self):
        super().__init__()
        k, w = rnn.choice([1, 3, 5], label="k"), rnn.choice([2, 4], label="w")
        self.conv = rnn.Conv2d(3, w * 2, k, padding=k // 2)
        self.bn = rnn.BatchNorm2d(w * 2)
        self.head = rnn.Linear(w * 2, 2)

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize(("factory", "kwargs"), [(load_factory(CNN), {}), (Kernels, {})])
def test_a_space_modules_path_computes_what_its_fixed_network_computes_with_the_weights_copied(factory, kwargs):
    """Op, width (sliced channels), kernel (its centre) and depth choices, in train and eval mode."""
    space = rnn.model_space(factory, **kwargs)
    supernet = rnn.Blueprint(factory, kwargs)
    x = torch.randn(3, *((1, 8, 8) if factory is not Kernels else (3, 6, 6)))
    for seed in range(6):
        arch = space.to_arch(space.sample(np.random.default_rng(seed)))
        supernet.activate(arch)
        supernet.model.train()
        supernet.model(x)  # moves the shared BatchNorm statistics
        fixed = supernet.path(arch)
        for mode in (True, False):
            supernet.model.train(mode), fixed.train(mode)
            torch.testing.assert_close(supernet.model(x), fixed(x))


class Nothing(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)


class TwoLists(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = rnn.LayerChoice([nn.ReLU(), nn.Tanh()], label="x")
        self.b = rnn.LayerChoice([nn.ReLU()], label="x")


@pytest.mark.parametrize(("make", "message"), [
    (lambda: rnn.LayerChoice([]), "LayerChoice needs at least one candidate"),
    (lambda: rnn.InputChoice(2, n_chosen=3), r"n_chosen=3 must be an integer in \[1, n_candidates = 2\]"),
    (lambda: rnn.Repeat(lambda i: nn.ReLU(), depth=(0, 2)), "Repeat depth must be whole numbers >= 1"),
    (lambda: rnn.choice([]), "at least one value"),
    (lambda: rnn.model_space(Nothing), "has no choice"),
    (lambda: rnn.model_space(TwoLists), "label 'x' names two different choices"),
])
def test_a_malformed_model_space_is_refused_by_name(make, message):
    with pytest.raises(ValueError, match=message):
        make()


NNI_SPACE = '''
import torch
import torch.nn.functional as F
import nni.retiarii.nn.pytorch as nn
from nni.retiarii import model_wrapper


@model_wrapper
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.LayerChoice([nn.Conv2d(8, 16, 3, padding=1), nn.Conv2d(8, 16, 5, padding=2)], label="conv2")
        self.dropout = nn.Dropout(nn.ValueChoice([0.25, 0.5, 0.75], label="dropout"))
        feature = nn.ValueChoice([32, 64, 128], label="hidden")
        self.fc1 = nn.Linear(16, feature)
        self.blocks = nn.Repeat(lambda i: nn.Linear(feature, feature), (1, 2), label="depth")
        self.skip = nn.InputChoice(n_candidates=2, n_chosen=1, label="skip")
        self.fc2 = nn.Linear(feature, 10)

    def forward(self, x):
        x = F.max_pool2d(self.conv2(F.relu(self.conv1(x))), 2).mean((2, 3))
        h = F.relu(self.fc1(self.dropout(x)))
        return self.fc2(self.skip([h, self.blocks(h)]))
'''


def test_a_model_space_written_the_nni_way_runs_after_changing_its_imports(tmp_path):
    source = NNI_SPACE.replace("import nni.retiarii.nn.pytorch as nn", "import rlnas.nn as nn").replace(
        "from nni.retiarii import model_wrapper", "from rlnas.nn import model_wrapper")
    (tmp_path / "nni_space.py").write_text(source)
    space = rnn.ModelSpace(f"{tmp_path}/nni_space.py:Net")
    assert space.decision_names() == ["conv2", "dropout", "hidden", "depth", "skip"]
    assert space.size == 2 * 3 * 3 * 2 * 2
    net = space.build({"conv2": 1, "dropout": 0.5, "hidden": 64, "depth": 2, "skip": [1]})
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert [m.out_features for m in net.blocks] == [64, 64]


def test_a_fixed_network_exports_with_torch_export():
    net = rnn.fixed_arch(load_factory(CNN), HAND_ARCH).eval()
    x = torch.randn(2, 1, 8, 8)
    exported = torch.export.export(net, (x,))
    torch.testing.assert_close(exported.module()(x), net(x))


@pytest.mark.parametrize("factory", [load_factory(CNN), Kernels])
def test_a_one_hot_relaxation_computes_the_path_it_points_at(factory):
    """DARTS's mixture with all weight on one option per decision is that path: candidates and
    depths summed, widths and kernels as masks over the largest layer (zero channels, zero taps)."""
    space, supernet = rnn.model_space(factory), rnn.Blueprint(factory, {})
    x = torch.randn(3, *((1, 8, 8) if factory is not Kernels else (3, 6, 6)))
    for seed in range(5):
        decisions = space.sample(np.random.default_rng(seed))
        arch = space.to_arch(decisions)
        one_hot = [torch.zeros(len(d.options)) for d in space.decisions]
        for (d, _), choice in zip(space.step_decisions(), decisions, strict=True):
            one_hot[space.decisions.index(d)][choice] = 1.0
        for mode in (True, False):
            supernet.model.train(mode)
            supernet.activate(arch)
            path = supernet.model(x)
            supernet.weigh(one_hot)
            torch.testing.assert_close(supernet.model(x), path)


def test_the_strongest_architecture_of_a_relaxation_by_hand():
    space = rnn.model_space(Hand)  # w, op, pick (2 of 3), blocks (1..3), act, three rates
    weights = [torch.tensor(w) for w in ([0.3, 0.7], [0.5, 0.2, 0.3], [0.5, 0.1, 0.4], [0.6, 0.3, 0.1],
                                         [0.2, 0.8], [0.9, 0.1], [0.1, 0.9], [0.4, 0.6])]
    assert space.to_arch(space.strongest(weights)) == {"w": 8, "op": 0, "pick": [0, 2], "blocks": 1, "act": "gelu",
                                                       "blocks.0.drop.p": 0.0}  # depth 1: the other rates off


def test_a_space_is_named_by_its_file_or_its_import_path():
    assert load_factory("tests.test_model_space:Hand") is Hand
    assert load_factory(CNN).__name__ == "Net" and load_factory(CNN) is load_factory(CNN)  # loaded once
    for spec, message in (("examples/cnn_space.py", "must be 'path/to/file.py:Name' or 'package.module:Name'"),
                          ("no_such_pkg.mod:Net", "cannot import no_such_pkg.mod"),
                          ("examples/none.py:Net", "no such file examples/none.py")):
        with pytest.raises((ValueError, FileNotFoundError), match=re.escape(message)):
            load_factory(spec)
