"""NASNet / ENAS micro cells (Zoph et al. 2018; Pham et al. 2018)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rlnas.core.settings import INT_AT_LEAST_1, setting
from rlnas.spaces.base import Decisions, SearchSpace, SpaceConfig

NASNET_OPS = ("identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")
# Every op a NASNet cell may use; ``rlnas.networks.ops`` builds a module for each of these names.
NASNET_KNOWN_OPS = (*NASNET_OPS, "conv_1x1", "conv_3x3", "dil_conv_3x3", "dil_conv_5x5")
COMBINATIONS = ("add", "concat")
CELLS = ("normal", "reduce")
_BLOCK_FIELDS = ("input 1", "input 2", "op 1", "op 2", "combination")


@dataclass
class NASNetConfig(SpaceConfig):
    num_blocks: int = setting(5, "blocks per cell", INT_AT_LEAST_1)
    ops: list[str] = setting(list(NASNET_OPS), f"the ops a block may apply, from {', '.join(NASNET_KNOWN_OPS)}")

    def validate(self) -> None:
        known = ", ".join(NASNET_KNOWN_OPS)
        if not self.ops:
            raise ValueError(f"nasnet: the op list is empty; choose from {known}")
        unknown = [op for op in self.ops if op not in NASNET_KNOWN_OPS]
        if unknown:
            raise ValueError(f"nasnet: unknown op(s) {unknown}; known ops are {known}")
        if len(set(self.ops)) != len(self.ops):
            raise ValueError(f"nasnet: op list {list(self.ops)} names an op twice")


class NASNetSpace(SearchSpace):
    """NASNet / ENAS micro space: a normal and a reduction cell of ``num_blocks`` blocks, each
    deciding two inputs (0, 1: the cell's inputs; ``2 + j``: block ``j``), two ops and how
    they combine. String form: ``normal=sep_conv_3x3~0,identity~1,add|...;reduce=...``."""

    Config = NASNetConfig
    name = "nasnet"

    def __init__(self, *, config: NASNetConfig | None = None, **settings):
        super().__init__(config=config, **settings)
        self.num_blocks, self.ops = self.config.num_blocks, tuple(self.config.ops)
        self.num_decisions = 2 * self.num_blocks * len(_BLOCK_FIELDS)
        self.max_choices = max(self.num_blocks + 1, len(self.ops), len(COMBINATIONS))
        # Legal choices depend only on the position, so they are computed once.
        self._legal: list[range] = []
        for _cell in CELLS:
            for block in range(self.num_blocks):
                inputs = range(block + 2)
                self._legal += [inputs, inputs, range(len(self.ops)), range(len(self.ops)), range(len(COMBINATIONS))]

    @property
    def block_inputs(self) -> list[int]:
        """How many states each block may read: the two cell inputs and the blocks before it."""
        return [block + 2 for block in range(self.num_blocks)]

    def decision_names(self) -> list[str]:
        return [f"{cell} block {b} {f}" for cell in CELLS for b in range(self.num_blocks) for f in _BLOCK_FIELDS]

    def choice_names(self, step: int) -> list[str]:
        field = step % len(_BLOCK_FIELDS)
        if field < 2:
            return ["h[-2]", "h[-1]"] + [f"block {j}" for j in range(self.num_blocks - 1)]
        return list(self.ops) if field < 4 else list(COMBINATIONS)

    def legal_choices(self, prefix: Sequence[int]) -> range:
        return self._legal[len(prefix)]

    @property
    def size(self) -> int:
        return math.prod(len(self._legal[i]) for i in range(self.num_decisions // 2)) ** 2

    def to_string(self, decisions: Sequence[int]) -> str:
        return ";".join(f"{which}=" + "|".join(f"{o1}~{i1},{o2}~{i2},{comb}" for i1, i2, o1, o2, comb
                                                in self.cell(decisions, which)) for which in CELLS)

    def from_string(self, arch: str) -> Decisions:
        expected = (f"'normal=op~in,op~in,comb|... ;reduce=...' with {self.num_blocks} blocks "
                    f"per cell, op in {', '.join(self.ops)}, comb in {', '.join(COMBINATIONS)}")

        def bad(why: str) -> ValueError:
            return ValueError(f"malformed NASNet architecture {arch!r}: {why}; expected {expected}")

        if not isinstance(arch, str):
            raise bad("not a string")
        cells = arch.split(";")
        if len(cells) != len(CELLS):
            raise bad(f"found {len(cells)} cell(s)")
        decisions: list[int] = []
        for cell_text, cell in zip(cells, CELLS, strict=True):
            label, sep, body = cell_text.partition("=")
            if label.strip() != cell or not sep:
                raise bad(f"cell {cell_text!r} should start with '{cell}='")
            blocks = body.split("|")
            if len(blocks) != self.num_blocks:
                raise bad(f"{cell} cell has {len(blocks)} blocks")
            for b, block in enumerate(blocks):
                parts = block.split(",")
                if len(parts) != 3:
                    raise bad(f"block {block!r} should be 'op~in,op~in,comb'")
                ins, ops = [], []
                for part in parts[:2]:
                    op, sep, inp = part.partition("~")
                    if op not in self.ops:
                        raise bad(f"unknown op {op!r} in block {block!r}")
                    if not sep or not inp.isdigit() or int(inp) >= b + 2:
                        raise bad(f"input {inp!r} in block {block!r} (block {b} may use 0..{b + 1})")
                    ins.append(int(inp))
                    ops.append(self.ops.index(op))
                if parts[2] not in COMBINATIONS:
                    raise bad(f"unknown combination {parts[2]!r}")
                decisions += [*ins, *ops, COMBINATIONS.index(parts[2])]
        return tuple(decisions)

    def cell(self, decisions: Sequence[int], which: str) -> list[tuple[int, int, str, str, str]]:
        """Blocks of one cell as ``(input1, input2, op1, op2, combination)``."""
        start = CELLS.index(which) * self.num_blocks * len(_BLOCK_FIELDS)
        out = []
        for b in range(self.num_blocks):
            i1, i2, o1, o2, comb = decisions[start + 5 * b: start + 5 * b + 5]
            out.append((i1, i2, self.ops[o1], self.ops[o2], COMBINATIONS[comb]))
        return out


def loose_ends(blocks: Sequence[tuple[int, int, str, str, str]]) -> list[int]:
    """The states a NASNet cell concatenates: the blocks nothing consumed."""
    used = {i for i1, i2, *_ in blocks for i in (i1, i2)}
    return [2 + b for b in range(len(blocks)) if 2 + b not in used]
