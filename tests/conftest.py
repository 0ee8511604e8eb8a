import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads: see below

import numpy as np
import pytest
import torch

import rlnas  # noqa: F401  (registers the environments)
from rlnas.evaluators import CallableEvaluator
from rlnas.spaces import NASNetSpace, NB201Space

# One torch thread per test worker (and per process a test starts): two workers on two cores
# with torch's default of a thread per core oversubscribe them, and its spinning threads cost
# more CPU than they save.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def nb201() -> NB201Space:
    return NB201Space()


@pytest.fixture(scope="session")
def nasnet() -> NASNetSpace:
    return NASNetSpace()


def op_count_score(space):
    """A cheap deterministic objective: fraction of decisions equal to 1."""
    return CallableEvaluator(space, lambda arch: np.mean(np.array(space.from_string(arch)) == 1),
                             label="ones")


@pytest.fixture
def cheap_nasnet_evaluator(nasnet):
    return op_count_score(nasnet)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (and the longest, the recorded sequences, first of all): the two
    workers then finish together instead of one idling while the other runs a long test."""
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, "test_sequences" not in item.nodeid))
