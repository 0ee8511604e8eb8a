"""The NAS-Bench-201 cell (Dong & Yang 2020): one op on each of the 6 edges of a 4-node DAG."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from functools import cached_property
from importlib import resources

from rlnas.spaces.base import Decisions, SearchSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node)
NB201_TABLE = "nb201_cifar10_12ep.csv.gz"


class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell: one op per edge, in the order ``|op~0|+|op~0|op~1|+|...|``."""

    name = "nb201"
    num_decisions = len(NB201_EDGES)
    max_choices = len(NB201_OPS)
    ops = NB201_OPS

    def decision_names(self) -> list[str]:
        return [f"edge {src}->{dst}" for dst, src in NB201_EDGES]

    def choice_names(self, step: int) -> list[str]:
        return list(self.ops)

    def legal_choices(self, prefix: Sequence[int]) -> range:
        return range(len(self.ops))

    @property
    def size(self) -> int:
        return len(self.ops) ** self.num_decisions

    def to_string(self, decisions: Sequence[int]) -> str:
        ops = [f"{self.ops[d]}~{src}" for d, (_, src) in zip(decisions, NB201_EDGES, strict=True)]
        return f"|{ops[0]}|+|{ops[1]}|{ops[2]}|+|{ops[3]}|{ops[4]}|{ops[5]}|"

    def from_string(self, arch: str) -> Decisions:
        expected = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2| with op in " + ", ".join(self.ops)
        if not isinstance(arch, str) or not arch.startswith("|") or not arch.endswith("|"):
            raise ValueError(f"malformed NB201 architecture {arch!r}; expected {expected}")
        nodes = arch[1:-1].split("|+|")
        tokens = [tok for node in nodes for tok in node.split("|")]
        if [len(node.split("|")) for node in nodes] != [1, 2, 3]:
            raise ValueError(f"malformed NB201 architecture {arch!r}; expected {expected}")
        decisions = []
        for tok, (_, src) in zip(tokens, NB201_EDGES, strict=True):
            op, sep, inp = tok.partition("~")
            if op not in self.ops or sep != "~" or inp != str(src):
                raise ValueError(f"malformed NB201 architecture {arch!r}: bad edge {tok!r} (expected op~{src}); "
                                 f"expected {expected}")
            decisions.append(self.ops.index(op))
        return tuple(decisions)

    # The benchmark numbers its cells in its own order; the bundled table carries it.
    @cached_property
    def _benchmark_order(self) -> tuple[list[str], dict[str, int]]:
        with resources.files("rlnas.data").joinpath(NB201_TABLE).open("rb") as raw:
            lines = gzip.decompress(raw.read()).decode().splitlines()[1:]
        archs = [""] * len(lines)
        for line in lines:
            index, arch, _ = line.split(",", 2)
            archs[int(index)] = arch
        return archs, {a: i for i, a in enumerate(archs)}

    def to_index(self, decisions: Sequence[int]) -> int:
        """NAS-Bench-201's own index of the cell (0..15624)."""
        return self._benchmark_order[1][self.to_string(decisions)]

    def from_index(self, index: int) -> Decisions:
        archs = self._benchmark_order[0]
        if not 0 <= index < len(archs):
            raise ValueError(f"NB201 index {index} out of range; allowed 0..{len(archs) - 1}")
        return self.from_string(archs[index])
