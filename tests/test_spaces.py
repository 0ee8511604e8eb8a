import csv
import gzip
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnas.networks.ops import NASNET_OP_BUILDERS, NB201_OP_BUILDERS
from rlnas.spaces import NASNET_KNOWN_OPS, NB201_OPS, NASNetSpace, make_space


def bundled_rows():
    raw = resources.files("rlnas.data").joinpath("nb201_cifar10_12ep.csv.gz").read_bytes()
    return list(csv.DictReader(gzip.decompress(raw).decode().splitlines()))


def test_nb201_all_table_strings_round_trip(nb201):
    rows = bundled_rows()
    assert len(rows) == 15625 == nb201.size
    seen = set()
    for row in rows:
        decisions = nb201.from_string(row["arch_str"])
        assert nb201.to_string(decisions) == row["arch_str"]
        assert nb201.to_index(decisions) == int(row["arch_index"])
        assert nb201.from_index(int(row["arch_index"])) == decisions
        seen.add(decisions)
    assert len(seen) == 15625


def test_nb201_string_format(nb201):
    arch = nb201.to_string((3, 3, 3, 1, 2, 3))
    assert arch == ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                    "nor_conv_1x1~1|nor_conv_3x3~2|")
    assert nb201.to_index((3, 3, 3, 1, 2, 3)) == 13714


def test_nasnet_random_genotypes_round_trip(nasnet):
    rng = np.random.default_rng(0)
    for _ in range(10_000):
        decisions = nasnet.sample(rng)
        assert nasnet.from_string(nasnet.to_string(decisions)) == decisions


def test_nasnet_legal_inputs_grow_with_block(nasnet):
    # block b of a cell may read the two cell inputs and blocks 0..b-1
    for block in range(5):
        prefix = [0] * (5 * block)
        assert nasnet.legal_choices(prefix) == range(block + 2)
        assert nasnet.legal_choices(prefix + [0, 0]) == range(5)  # op 1
        assert nasnet.legal_choices(prefix + [0, 0, 0, 0]) == range(2)  # add / concat
    assert nasnet.num_decisions == 50 and nasnet.max_choices == 6


def test_sizes():
    assert make_space("nb201").size == 5**6
    # per cell: prod_b (b+2)^2 * |ops|^2 * 2, two cells
    per_cell = 1
    for b in range(2):
        per_cell *= (b + 2) ** 2 * 3**2 * 2
    assert NASNetSpace(num_blocks=2, ops=["identity", "conv_3x3", "max_pool_3x3"]).size == per_cell**2


@pytest.mark.parametrize("name", ["nb201", "nasnet"])
def test_mutate_changes_exactly_one_decision(name):
    space, rng = make_space(name), np.random.default_rng(1)
    for _ in range(200):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        assert sum(a != b for a, b in zip(parent, child, strict=True)) == 1
        assert space.validate(child) == child


def test_sampling_is_seeded(nasnet):
    a = [nasnet.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [nasnet.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b


def test_arch_hash_is_stable(nb201):
    # sha256 of the canonical string: the same in every process, platform and version
    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert nb201.to_string((0,) * 6) == arch and nb201.arch_hash(arch) == "234a50f160cf8fc6"
    assert nb201.arch_hash(arch) != nb201.arch_hash(nb201.to_string((1,) + (0,) * 5))


@pytest.mark.parametrize("bad, fragment", [
    ("nor_conv_3x3~0", "malformed NB201"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|", "malformed"),
    ("|conv_7x7~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
     "bad edge 'conv_7x7~0'"),
    ("|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
     "expected op~0"),
])
def test_nb201_malformed_strings(nb201, bad, fragment):
    with pytest.raises(ValueError, match="nor_conv_3x3") as err:
        nb201.from_string(bad)
    assert fragment in str(err.value)
    assert "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" in str(err.value)  # names the allowed form


@pytest.mark.parametrize("mutation, fragment", [
    (lambda s: s.replace("normal=", "norm="), "should start with 'normal='"),
    (lambda s: s.split(";")[0], "found 1 cell"),
    (lambda s: s.replace("sep_conv_3x3", "conv_7x7", 1), "unknown op 'conv_7x7'"),
    (lambda s: s.replace("~0", "~9", 1), "input '9'"),
    (lambda s: s.replace(",add", ",mul", 1), "unknown combination 'mul'"),
])
def test_nasnet_malformed_strings(nasnet, mutation, fragment):
    arch = nasnet.to_string(nasnet.from_string(
        "normal=" + "|".join(["sep_conv_3x3~0,identity~1,add"] * 5) + ";reduce="
        + "|".join(["sep_conv_3x3~0,identity~1,add"] * 5)))
    with pytest.raises(ValueError) as err:
        nasnet.from_string(mutation(arch))
    assert fragment in str(err.value) and "expected" in str(err.value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="|+~,;=_0123456789abcdeflnoprstvxyz", max_size=120))
def test_garbage_strings_raise_value_error_only(text):
    for space in (make_space("nb201"), make_space("nasnet")):
        try:
            decisions = space.from_string(text)
        except ValueError as err:
            assert "expected" in str(err)
        else:
            assert space.to_string(decisions) == text


def test_validate_names_legal_choices(nasnet):
    with pytest.raises(ValueError, match=r"illegal choice 3 for decision 0 \(normal block 0 input 1\); "
                                         r"legal choices are 0=h\[-2\], 1=h\[-1\]"):
        nasnet.validate((3,) + (0,) * 49)
    with pytest.raises(ValueError, match="expected 50 decisions, got 2"):
        nasnet.validate((0, 0))


def test_bad_space_configs():
    with pytest.raises(ValueError, match="unknown op.*known ops are identity"):
        NASNetSpace(ops=["identity", "conv_9x9"])
    with pytest.raises(ValueError, match="nasnet: num_blocks=0 must be an integer >= 1"):
        NASNetSpace(num_blocks=0)
    with pytest.raises(ValueError, match="empty"):
        NASNetSpace(ops=[])
    with pytest.raises(ValueError, match="unknown search space 'darts'; available search spaces: hpo, model, nasnet, "
                                         "nb201"):
        make_space("darts")
    with pytest.raises(ValueError, match="out of range"):
        make_space("nb201").from_index(15625)


def test_op_registries_match_spaces():
    assert tuple(NASNET_OP_BUILDERS) == NASNET_KNOWN_OPS
    assert tuple(NB201_OP_BUILDERS) == NB201_OPS
