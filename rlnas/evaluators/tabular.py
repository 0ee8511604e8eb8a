"""NAS-Bench-201 scores from a table: the bundled one, a CSV like it, or the official files."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rlnas.core.settings import MISSING, OneOf, Text, setting
from rlnas.core.store import Evaluation
from rlnas.evaluators.base import Evaluator, EvaluatorConfig
from rlnas.networks.costs import nb201_costs
from rlnas.spaces import NB201_TABLE, NB201Space, SearchSpace

TABLE_COLUMNS = ("arch_index", "arch_str", "val_acc", "test_acc")
_PARSED: dict[str, dict[str, tuple[int, float, float]]] = {}  # each table once per process, whoever reads it


class NB201Evaluator(Evaluator):
    """An evaluator of NAS-Bench-201 cells only (its space is NB201's when none is given)."""

    def check_space(self, space: SearchSpace | None) -> SearchSpace:
        if space is None:
            return NB201Space()
        if not isinstance(space, NB201Space):
            raise ValueError(f"the {self.name} evaluator scores NAS-Bench-201 cells only, not search "
                             f"space {space.name!r}; use evaluator 'scratch' for it")
        return space


@dataclass
class TabularConfig(EvaluatorConfig):
    table: str | None = setting(None, f"a CSV (optionally gzipped) with columns {','.join(TABLE_COLUMNS)}, "
                                      "accuracies in percent", Text("a path", none_means=f"the bundled {NB201_TABLE}"))


class TabularEvaluator(NB201Evaluator):
    """NAS-Bench-201 lookup: validation accuracy to search, test accuracy and costs in metrics."""

    Config = TabularConfig
    name = "tabular"
    costs = ("params", "flops")

    def __init__(self, table: str | Path | None = None, space: SearchSpace | None = None, *,
                 config: TabularConfig | None = None, run=None, **settings):
        if table is not None:
            settings["table"] = str(table)
        super().__init__(space, config=config, run=run, **settings)
        table = self.config.table
        self.table = str(table) if table else f"<bundled {NB201_TABLE}>"
        if table is None:
            raw = resources.files("rlnas.data").joinpath(NB201_TABLE).read_bytes()
        else:
            path = Path(table)
            if not path.is_file():
                raise FileNotFoundError(
                    f"NAS-Bench-201 table {path} not found; expected a CSV (optionally .gz) "
                    f"with columns {','.join(TABLE_COLUMNS)}")
            raw = path.read_bytes()
        self.fingerprint = f"tabular:{hashlib.sha256(raw).hexdigest()[:12]}"
        if self.fingerprint not in _PARSED:
            _PARSED[self.fingerprint] = self._parse(raw)
        self._rows = _PARSED[self.fingerprint]
        self.best_arch = max(self._rows, key=lambda a: self._rows[a][1])

    def _parse(self, raw: bytes) -> dict[str, tuple[int, float, float]]:
        def bad(why: str) -> ValueError:
            return ValueError(f"NAS-Bench-201 table {self.table}: {why}; expected a CSV with "
                              f"columns {','.join(TABLE_COLUMNS)} (accuracies in percent)")

        try:
            text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise bad(f"cannot be read as text ({err})") from err
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None or not set(TABLE_COLUMNS) <= {h.strip() for h in header}:
            raise bad(f"header is {header}")
        col = {name: [h.strip() for h in header].index(name) for name in TABLE_COLUMNS}
        rows: dict[str, tuple[int, float, float]] = {}
        legal = {self.space.to_string(d) for d in self.space.all_cells()}
        for line, row in enumerate(reader, start=2):
            try:
                arch = row[col["arch_str"]]
                if arch not in legal:
                    self.space.from_string(arch)  # raises with the parser's message
                index, val, test = (int(row[col["arch_index"]]), float(row[col["val_acc"]]),
                                    float(row[col["test_acc"]]))
            except (IndexError, ValueError) as err:
                raise bad(f"line {line} is garbled ({err})") from err
            if not (math.isfinite(val) and math.isfinite(test)):
                raise bad(f"line {line} has a non-finite accuracy")
            rows[arch] = (index, val / 100.0, test / 100.0)
        if not rows:
            raise bad("it has no rows")
        return rows

    def __len__(self) -> int:
        return len(self._rows)

    def evaluate(self, arch: str) -> Evaluation:
        row = self._rows.get(arch)
        if row is None:
            self.space.from_string(arch)  # a malformed string gets the parser's message
            raise KeyError(f"architecture {arch} is not in table {self.table} ({len(self)} rows)")
        index, val, test = row
        params, flops = nb201_costs()[arch]
        return Evaluation(arch, val, {"val_acc": val, "test_acc": test, "arch_index": index,
                                      "params": params, "flops": flops})


@dataclass
class NATSConfig(EvaluatorConfig):
    path: str = setting(MISSING, "the benchmark file (the 'tss' topology search space)", Text("a path"))
    hp: str = setting("12", "epochs of training the scores come from", OneOf(("12", "200")))


class NATSBenchEvaluator(NB201Evaluator):
    """The official NATS-Bench (topology) files, after ``hp`` epochs; needs ``rlnas[nats]``."""

    Config = NATSConfig
    name = "nats"

    def __init__(self, path: str | Path | None = None, space: SearchSpace | None = None, *,
                 config: NATSConfig | None = None, run=None, **settings):
        if path is not None:
            settings["path"] = str(path)
        super().__init__(space, config=config, run=run, **settings)
        path, self.hp = self.config.path, self.config.hp
        try:
            from nats_bench import create
        except ImportError as err:
            raise ImportError("NATSBenchEvaluator needs the optional 'nats_bench' package: "
                              "pip install 'rlnas[nats]' (or pip install nats_bench)") from err
        if not Path(path).exists():
            raise FileNotFoundError(f"NATS-Bench file {path} not found; download the 'tss' "
                                    "benchmark file and pass its path")
        self.api = create(str(path), "tss", fast_mode=True, verbose=False)
        self.fingerprint = f"nats:{Path(path).name}:hp{self.hp}"

    def evaluate(self, arch: str) -> Evaluation:
        self.space.from_string(arch)
        index = self.api.query_index_by_arch(arch)
        valid = self.api.get_more_info(index, "cifar10-valid", hp=self.hp, is_random=False)
        test = self.api.get_more_info(index, "cifar10", hp=self.hp, is_random=False)
        val_acc = valid["valid-accuracy"] / 100.0
        return Evaluation(arch, val_acc, {"val_acc": val_acc,
                                          "test_acc": test["test-accuracy"] / 100.0,
                                          "arch_index": index})
