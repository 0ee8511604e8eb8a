"""Search spaces: an architecture is a fixed-length sequence of integer decisions.

Every space answers the same questions: which decisions are there, which choices are
legal for the next decision given the ones made so far, how to sample and mutate, and how
to turn decisions into a canonical string (and back). Spaces are pure Python and
import-light so an environment step never touches torch.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from importlib import resources

import numpy as np

Decisions = tuple[int, ...]


class SearchSpace(ABC):
    """A space of architectures built by ``num_decisions`` sequential choices.

    ``max_choices`` bounds every decision, so an agent can use one ``Discrete`` action
    space; which of those choices are legal at a step is given by :meth:`legal_choices`.
    """

    name: str
    num_decisions: int
    max_choices: int

    @abstractmethod
    def decision_names(self) -> list[str]:
        """A short label per decision (for logs and error messages)."""

    @abstractmethod
    def choice_names(self, step: int) -> list[str]:
        """Human-readable names of every choice of decision ``step`` (legal or not)."""

    @abstractmethod
    def legal_choices(self, prefix: Sequence[int]) -> range:
        """Legal choices of decision ``len(prefix)`` given the decisions ``prefix``."""

    @abstractmethod
    def to_string(self, decisions: Sequence[int]) -> str:
        """Canonical string of a complete architecture; :meth:`from_string` inverts it."""

    @abstractmethod
    def from_string(self, arch: str) -> Decisions:
        """Parse a canonical string; raises ``ValueError`` saying what is malformed."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of distinct decision sequences."""

    # -- shared behaviour ---------------------------------------------------------------
    def config(self) -> dict:
        """The space's settings as plain values: ``make_space(**space.config())`` rebuilds it
        (how a saved network names the space it was built from)."""
        return {"name": self.name}

    def validate(self, decisions: Sequence[int]) -> Decisions:
        """Return ``decisions`` as a tuple, or raise naming the first illegal decision."""
        decisions = tuple(int(d) for d in decisions)
        if len(decisions) != self.num_decisions:
            raise ValueError(
                f"{self.name}: expected {self.num_decisions} decisions, got {len(decisions)}"
            )
        for step, choice in enumerate(decisions):
            legal = self.legal_choices(decisions[:step])
            if choice not in legal:
                raise ValueError(self.illegal_message(step, choice, decisions[:step]))
        return decisions

    def illegal_message(self, step: int, choice: int, prefix: Sequence[int]) -> str:
        legal = self.legal_choices(prefix)
        names = self.choice_names(step)
        allowed = ", ".join(f"{c}={names[c]}" for c in legal)
        return (
            f"{self.name}: illegal choice {choice} for decision {step} "
            f"({self.decision_names()[step]}); legal choices are {allowed}"
        )

    def sample(self, rng: np.random.Generator) -> Decisions:
        """Uniform over each decision's legal choices, one decision after another."""
        decisions: list[int] = []
        for _ in range(self.num_decisions):
            legal = self.legal_choices(decisions)
            decisions.append(legal[int(rng.integers(len(legal)))])
        return tuple(decisions)

    def mutate(self, decisions: Sequence[int], rng: np.random.Generator) -> Decisions:
        """Change one decision to another legal value (Real et al. 2019).

        Decisions after the mutated one keep their value where it is still legal and are
        resampled where it is not, so spaces with conditional choices stay valid.
        """
        decisions = self.validate(decisions)
        mutable = self._mutable_steps(decisions)
        step = mutable[int(rng.integers(len(mutable)))]
        others = [c for c in self.legal_choices(decisions[:step]) if c != decisions[step]]
        return self._repair(decisions, step, others[int(rng.integers(len(others)))], rng)

    def all_cells(self) -> list[Decisions]:
        """Every architecture of the space, depth first over the legal choices (``size`` of
        them: call it on small spaces only)."""
        cells: list[Decisions] = [()]
        for _ in range(self.num_decisions):
            cells = [(*prefix, c) for prefix in cells for c in self.legal_choices(prefix)]
        return cells

    def neighbours(self, decisions: Sequence[int], rng: np.random.Generator) -> list[Decisions]:
        """Every architecture one decision away, in a random order (local search's
        neighbourhood); later decisions made illegal by the change are repaired as in
        :meth:`mutate`."""
        decisions = self.validate(decisions)
        found = [self._repair(decisions, step, choice, rng) for step in self._mutable_steps(decisions)
                 for choice in self.legal_choices(decisions[:step]) if choice != decisions[step]]
        return [found[i] for i in rng.permutation(len(found))]

    def _mutable_steps(self, decisions: Decisions) -> list[int]:
        return [s for s in range(self.num_decisions) if len(self.legal_choices(decisions[:s])) > 1]

    def _repair(self, decisions: Decisions, step: int, choice: int, rng: np.random.Generator) -> Decisions:
        """``decisions`` with decision ``step`` set to ``choice``, later ones kept where still
        legal and resampled where not."""
        changed = [*decisions[:step], choice, *decisions[step + 1:]]
        for later in range(step + 1, self.num_decisions):
            legal = self.legal_choices(changed[:later])
            if changed[later] not in legal:
                changed[later] = legal[int(rng.integers(len(legal)))]
        return tuple(changed)

    def parameters(self, arch: str) -> dict | None:
        """What a user's objective is handed besides the string: a hyperparameter point's
        parameter dict (:class:`~rlnas.hpo_space.HPOSpace`); None for an architecture."""
        return None

    def arch_hash(self, decisions: Sequence[int]) -> str:
        """Stable across processes and Python versions (unlike ``hash``)."""
        return hashlib.sha256(self.to_string(decisions).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(decisions={self.num_decisions}, size={self.size})"


def _check_ops(ops: Sequence[str], known: Sequence[str], what: str) -> list[str]:
    ops = list(ops)
    if not ops:
        raise ValueError(f"{what}: the op list is empty; choose from {', '.join(known)}")
    unknown = [op for op in ops if op not in known]
    if unknown:
        raise ValueError(f"{what}: unknown op(s) {unknown}; known ops are {', '.join(known)}")
    if len(set(ops)) != len(ops):
        raise ValueError(f"{what}: op list {ops} names an op twice")
    return ops


# ---------------------------------------------------------------------------------------
# NAS-Bench-201
# ---------------------------------------------------------------------------------------
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node)
NB201_TABLE = "nb201_cifar10_12ep.csv.gz"


class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell (Dong & Yang 2020): one op on each of the 6 edges of a
    4-node DAG, decided in the benchmark's string order ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
    """

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
                raise ValueError(
                    f"malformed NB201 architecture {arch!r}: bad edge {tok!r} "
                    f"(expected op~{src}); expected {expected}"
                )
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


# ---------------------------------------------------------------------------------------
# NASNet / ENAS micro cells
# ---------------------------------------------------------------------------------------
NASNET_OPS = ("identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")
# Every op a NASNet cell may use; ``rlnas.ops`` builds a module for each of these names.
NASNET_KNOWN_OPS = (*NASNET_OPS, "conv_1x1", "conv_3x3", "dil_conv_3x3", "dil_conv_5x5")
COMBINATIONS = ("add", "concat")
CELLS = ("normal", "reduce")
_BLOCK_FIELDS = ("input 1", "input 2", "op 1", "op 2", "combination")


class NASNetSpace(SearchSpace):
    """NASNet / ENAS micro search space (Zoph et al. 2018; Pham et al. 2018).

    A normal and a reduction cell of ``num_blocks`` blocks each. Block ``b`` makes five
    decisions: input 1 and input 2 (0 and 1 are the cell's inputs h[-2] and h[-1],
    ``2 + j`` is block ``j`` of the same cell, so block ``b`` has ``b + 2`` choices),
    op 1, op 2, and how the two results combine (add or concat).

    String form: ``normal=op~in,op~in,comb|...;reduce=...``, e.g.
    ``normal=sep_conv_3x3~0,identity~1,add|...``.
    """

    name = "nasnet"

    def __init__(self, num_blocks: int = 5, ops: Sequence[str] = NASNET_OPS):
        if int(num_blocks) < 1:
            raise ValueError(f"nasnet: num_blocks must be >= 1, got {num_blocks}")
        self.num_blocks = int(num_blocks)
        self.ops = tuple(_check_ops(ops, NASNET_KNOWN_OPS, "nasnet"))
        self.num_decisions = 2 * self.num_blocks * len(_BLOCK_FIELDS)
        self.max_choices = max(self.num_blocks + 1, len(self.ops), len(COMBINATIONS))
        # Legal choices depend only on the position, so they are computed once.
        self._legal: list[range] = []
        for _cell in CELLS:
            for block in range(self.num_blocks):
                inputs = range(block + 2)
                self._legal += [inputs, inputs, range(len(self.ops)), range(len(self.ops)),
                                range(len(COMBINATIONS))]

    def config(self) -> dict:
        return {"name": self.name, "num_blocks": self.num_blocks, "ops": list(self.ops)}

    @property
    def block_inputs(self) -> list[int]:
        """How many states each block may read: the two cell inputs and the blocks before it."""
        return [block + 2 for block in range(self.num_blocks)]

    def decision_names(self) -> list[str]:
        return [f"{cell} block {b} {field}" for cell in CELLS for b in range(self.num_blocks)
                for field in _BLOCK_FIELDS]

    def choice_names(self, step: int) -> list[str]:
        field = step % len(_BLOCK_FIELDS)
        if field < 2:
            return ["h[-2]", "h[-1]"] + [f"block {j}" for j in range(self.num_blocks - 1)]
        return list(self.ops) if field < 4 else list(COMBINATIONS)

    def legal_choices(self, prefix: Sequence[int]) -> range:
        return self._legal[len(prefix)]

    @property
    def size(self) -> int:
        per_cell = math.prod(len(self._legal[i]) for i in range(self.num_decisions // 2))
        return per_cell**2

    def to_string(self, decisions: Sequence[int]) -> str:
        cells = []
        per_cell = self.num_blocks * len(_BLOCK_FIELDS)
        for c, cell in enumerate(CELLS):
            blocks = []
            for b in range(self.num_blocks):
                i1, i2, o1, o2, comb = decisions[c * per_cell + 5 * b: c * per_cell + 5 * b + 5]
                blocks.append(f"{self.ops[o1]}~{i1},{self.ops[o2]}~{i2},{COMBINATIONS[comb]}")
            cells.append(f"{cell}=" + "|".join(blocks))
        return ";".join(cells)

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
    """The states a NASNet cell outputs, concatenated: every block no other block consumed
    (as indices into the cell's states, where 0 and 1 are its inputs)."""
    used = {i for i1, i2, *_ in blocks for i in (i1, i2)}
    return [2 + b for b in range(len(blocks)) if 2 + b not in used]


SPACES = {"nb201": NB201Space, "nasnet": NASNetSpace}


def make_space(name: str, **kwargs) -> SearchSpace:
    """Build a search space by name: ``nb201``, ``nasnet`` or ``hpo`` (hyperparameters in
    NNI's format, :mod:`rlnas.hpo_space`)."""
    if name == "hpo":
        from rlnas.hpo_space import HPOSpace  # it builds on this module, so it is imported here

        return HPOSpace(**kwargs)
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; choose from {', '.join([*SPACES, 'hpo'])}")
    return SPACES[name](**kwargs)
