"""Search spaces: NAS-Bench-201, NASNet / ENAS micro cells, and NNI-format hyperparameters."""

from typing import Any

from rlnas.core.registry import SPACES
from rlnas.spaces.base import Decisions, SearchSpace, SpaceConfig
from rlnas.spaces.nasnet import CELLS, COMBINATIONS, NASNET_KNOWN_OPS, NASNET_OPS, NASNetSpace, loose_ends
from rlnas.spaces.nb201 import NB201_EDGES, NB201_OPS, NB201_TABLE, NB201Space

__all__ = ["CELLS", "COMBINATIONS", "NASNET_KNOWN_OPS", "NASNET_OPS", "NB201_EDGES", "NB201_OPS", "NB201_TABLE",
           "Decisions", "NASNetSpace", "NB201Space", "SearchSpace", "SpaceConfig", "loose_ends", "make_space"]


def make_space(name: str, **settings: Any) -> SearchSpace:
    """The search space registered as ``name`` (``nb201``, ``nasnet``, ``hpo``, or a plugin's)."""
    return SPACES.get(name)(**settings)
