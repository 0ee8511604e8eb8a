import numpy as np
import pytest

import rlnas  # noqa: F401  (registers the environments)
from rlnas.evaluators import CallableEvaluator
from rlnas.spaces import NASNetSpace, NB201Space


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
