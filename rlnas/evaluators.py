"""Evaluators turn an architecture string into a score: one small interface, many backends.

* :class:`TabularEvaluator` looks the cell up in a NAS-Bench-201 table (the bundled
  12-epoch CIFAR-10 table by default, or any CSV with the same columns).
* :class:`ScratchEvaluator` trains the child network on a real dataset and scores it on
  a held-out split.
* :class:`NATSBenchEvaluator` reads the official NAS-Bench-201 / NATS-Bench files through
  their own API (optional extra).
* :class:`SupernetEvaluator` scores with a weight-sharing supernet in a worker process
  (or on Ray); see :mod:`rlnas.supernet` and :mod:`rlnas.workers`.
* :class:`CallableEvaluator` wraps any Python function, for custom objectives and tests.
* :class:`TrialEvaluator` runs your own training script per evaluation (:mod:`rlnas.trial`).
* :class:`StoredEvaluator` puts any of them behind the durable evaluation store.

``fingerprint`` names what a score means (which table, which training recipe); the store
keys evaluations by it, so stores can be shared between runs without mixing meanings.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import importlib
import io
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from importlib import resources
from numbers import Real
from pathlib import Path
from typing import Any

from rlnas import checkpoint, trial
from rlnas.costs import nb201_costs
from rlnas.early_stopping import make_rule
from rlnas.ranges import INT_AT_LEAST_0, INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, THREADS, OneOf, Range, check
from rlnas.spaces import NB201_TABLE, NB201Space, SearchSpace
from rlnas.store import Evaluation, EvaluationStore

TABLE_COLUMNS = ("arch_index", "arch_str", "val_acc", "test_acc")


def _nb201_only(space: SearchSpace | None, evaluator: str) -> NB201Space:
    if space is None:
        return NB201Space()
    if not isinstance(space, NB201Space):
        raise ValueError(f"the {evaluator} evaluator scores NAS-Bench-201 cells only, not search "
                         f"space {space.name!r}; use evaluator 'scratch' for it")
    return space


class Evaluator(ABC):
    """Architectures in, scores + metrics + cost out."""

    space: SearchSpace
    fingerprint: str

    @abstractmethod
    def evaluate(self, arch: str) -> Evaluation:
        """Score one architecture, given as the space's canonical string."""

    def attach_run(self, run_dir: Path, run_id: str) -> None:
        """Told by the runner where the run lives, for evaluators with state of their own."""
        return None

    def keep_best_model(self, path: Path) -> None:
        """Save the best stand-alone network this evaluator trains to ``path`` (a table or
        a proxy trains none, and ignores it)."""
        return None

    def close(self) -> None:
        """Release workers, files and devices."""
        return None


class TabularEvaluator(Evaluator):
    """NAS-Bench-201 lookup. ``score`` is validation accuracy (a fraction), so search
    never sees test accuracy; ``metrics`` carries both, the benchmark index, and the cell's
    ``params`` and ``flops`` (multiply-accumulates) on the CIFAR-10 skeleton (:mod:`rlnas.costs`)."""

    def __init__(self, table: str | Path | None = None, space: SearchSpace | None = None):
        self.space = _nb201_only(space, "tabular")
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
        self._rows = self._parse(raw)
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


class ScratchEvaluator(Evaluator):
    """Train the child network from scratch and score it on the validation split.

    Before scoring, BatchNorm's running statistics are recalibrated on the training split
    (:func:`~rlnas.networks.recalibrate_batchnorm`): after a recipe of a few dozen steps
    the running averages still describe the early weights, and eval-mode accuracy fell to
    chance for cells whose training loss was low.

    Training is seeded from ``seed`` alone and runs on ``threads`` torch threads (``None``:
    torch's default, the machine's cores), so an architecture gets the same score on every
    machine with the same CPU kernels, whatever its core count; see the README on what
    differs between CPUs. Defaults are sized to train a NASNet child on digits in a few
    CPU seconds, where one thread is as fast as two.

    ``latency_batch``: also measure the trained child's forward time on a batch of that
    size on ``device`` (``metrics["latency_ms"]``, the median of 30 repeats after 5 warm-up
    forwards, and ``latency_iqr_ms``, their interquartile range: the measurement's noise);
    ``None`` measures nothing.
    """

    def __init__(self, space: SearchSpace, dataset: str = "digits", epochs: int = 4,
                 batch_size: int = 64, lr: float = 0.1, weight_decay: float = 3e-4,
                 channels: int = 8, cells_per_stage: int = 1, seed: int = 0,
                 device: str = "cpu", data_root: str | None = None, download: bool = False,
                 threads: int | None = 1, latency_batch: int | None = None):
        from rlnas.datasets import load_dataset

        check("scratch evaluator", locals(), {
            "epochs": INT_AT_LEAST_1, "batch_size": INT_AT_LEAST_1, "lr": POSITIVE, "weight_decay": NON_NEGATIVE,
            "channels": INT_AT_LEAST_1, "cells_per_stage": INT_AT_LEAST_0, "seed": INT_AT_LEAST_0,
            "threads": THREADS, "latency_batch": Range(1, integer=True, optional=True, none_means="not measured")})
        self.space = space
        self.data = load_dataset(dataset, data_root, download)
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.channels, self.cells_per_stage, self.seed, self.device = channels, cells_per_stage, seed, device
        self.threads, self.latency_batch = threads, latency_batch
        recipe = (f"{space.name}:{dataset}:e{epochs}:b{batch_size}:lr{lr}:wd{weight_decay}"
                  f":c{channels}:n{cells_per_stage}:s{seed}:t{threads or 'all'}:bn-recalibrated")
        if latency_batch is not None:  # stored rows without a latency must not answer this evaluator
            recipe += f":latency-b{latency_batch}-{device}"
        self.fingerprint = f"scratch:{recipe}"
        self.best_model_path: Path | None = None
        self.best_model_score = -math.inf  # the kept file's validation accuracy

    def keep_best_model(self, path: Path) -> None:
        """The file's own score is the bar, read once here, so a resumed run goes on from it."""
        self.best_model_path = Path(path)
        if self.best_model_path.is_file():
            kept = checkpoint.load(self.best_model_path)
            if kept["evaluator"] == self.fingerprint:
                self.best_model_score = kept["metrics"]["val_acc"]

    @property
    def network_settings(self) -> dict[str, int]:
        """``build_network``'s arguments besides the space and the architecture."""
        data = self.data
        return {"in_channels": data.input_shape[0], "num_classes": data.num_classes,
                "channels": self.channels, "cells_per_stage": self.cells_per_stage}

    def evaluate(self, arch: str) -> Evaluation:
        import torch

        from rlnas.networks import count_flops, count_parameters, measure_latency

        start = time.perf_counter()
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or threads)
        try:
            # An agent may step the env inside torch.no_grad() (PPO's rollouts do); training
            # the child needs gradients whatever the caller's mode.
            with torch.enable_grad():
                model, final_loss = self.train(arch)
            (val, val_loss), (test, _) = (self._measure(model, split) for split in (self.data.valid, self.data.test))
            if self.latency_batch is not None:
                latency, noise = measure_latency(model, self.data.input_shape, self.latency_batch, self.device)
        finally:
            torch.set_num_threads(threads)
        metrics = {"val_acc": val, "val_loss": val_loss, "test_acc": test, "final_loss": final_loss,
                   "params": count_parameters(model), "flops": count_flops(model.cpu(), self.data.input_shape)}
        if self.latency_batch is not None:
            metrics.update(latency_ms=latency, latency_iqr_ms=noise)
        self._save_if_best(arch, model, metrics)
        return Evaluation(arch, val, metrics, cost=time.perf_counter() - start)

    def train(self, arch: str, recalibrate: bool = True):
        """The child network of ``arch``, trained by this recipe with its BatchNorm statistics
        recalibrated (``recalibrate=False`` keeps training's running averages, to measure
        what that costs); returns it (in eval mode) and its last training loss."""
        import torch

        from rlnas.networks import build_network, recalibrate_batchnorm

        torch.manual_seed(self.seed)
        data = self.data
        model = build_network(self.space, arch, **self.network_settings).to(self.device)
        steps = self.epochs * math.ceil(len(data.train.y) / self.batch_size)
        opt = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9, nesterov=True,
                              weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=steps)
        gen = torch.Generator().manual_seed(self.seed)
        x, y = data.train.x.to(self.device), data.train.y.to(self.device)
        model.train()
        for _ in range(self.epochs):
            for idx in torch.randperm(len(y), generator=gen).split(self.batch_size):
                loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        if recalibrate:
            recalibrate_batchnorm(model, x, self.batch_size)
        return model.eval(), float(loss.detach())

    def _measure(self, model, split) -> tuple[float, float]:
        """Accuracy and mean cross-entropy on one split, in eval mode."""
        import torch

        model.eval()
        with torch.no_grad():
            logits, y = model(split.x.to(self.device)), split.y.to(self.device)
        return float((logits.argmax(1) == y).float().mean()), float(torch.nn.functional.cross_entropy(logits, y))

    def _save_if_best(self, arch: str, model, metrics: dict) -> None:
        """Keep the best-scoring child of the run on disk (written atomically: a kill
        mid-write leaves the last one whole). ``model`` is on the CPU by now."""
        if self.best_model_path is None or metrics["val_acc"] <= self.best_model_score:
            return
        checkpoint.save({"arch": arch, "space": self.space.config(), "network": self.network_settings,
                         "state_dict": model.state_dict(), "metrics": metrics, "evaluator": self.fingerprint},
                        self.best_model_path)
        self.best_model_score = metrics["val_acc"]


class NATSBenchEvaluator(Evaluator):
    """The official NAS-Bench-201 / NATS-Bench (topology) files through ``nats_bench``.

    Search reads ``cifar10-valid`` validation accuracy; reports carry ``cifar10`` test
    accuracy, both after ``hp`` epochs (12 or 200). Install with ``pip install rlnas[nats]``.
    """

    def __init__(self, path: str | Path, hp: str = "12", space: SearchSpace | None = None):
        try:
            from nats_bench import create
        except ImportError as err:
            raise ImportError("NATSBenchEvaluator needs the optional 'nats_bench' package: "
                              "pip install 'rlnas[nats]' (or pip install nats_bench)") from err
        if not Path(path).exists():
            raise FileNotFoundError(f"NATS-Bench file {path} not found; download the 'tss' "
                                    "benchmark file and pass its path")
        self.space = _nb201_only(space, "nats")
        self.hp = hp
        self.api = create(str(path), "tss", fast_mode=True, verbose=False)
        self.fingerprint = f"nats:{Path(path).name}:hp{hp}"

    def evaluate(self, arch: str) -> Evaluation:
        self.space.from_string(arch)
        index = self.api.query_index_by_arch(arch)
        valid = self.api.get_more_info(index, "cifar10-valid", hp=self.hp, is_random=False)
        test = self.api.get_more_info(index, "cifar10", hp=self.hp, is_random=False)
        val_acc = valid["valid-accuracy"] / 100.0
        return Evaluation(arch, val_acc, {"val_acc": val_acc,
                                          "test_acc": test["test-accuracy"] / 100.0,
                                          "arch_index": index})


OPTIMIZE_MODES = ("maximize", "minimize")


class Objective:
    """NNI's ``optimize_mode`` for evaluators that score with the user's own value: the
    search always maximises its score, so under ``"minimize"`` (a loss, an error) the score
    is ``-value`` and ``metrics["value"]`` keeps the value as reported."""

    def __init__(self, owner: str, optimize_mode: str, what: str):
        check(owner, {"optimize_mode": optimize_mode}, {"optimize_mode": OneOf(OPTIMIZE_MODES)})
        self.sign = -1.0 if optimize_mode == "minimize" else 1.0
        self.suffix = ":minimize" if self.sign < 0 else ""  # the store keeps the two apart
        self.what = what  # what the value is, for the message when it is not a number

    def evaluation(self, arch: str, value: Any, metrics: dict, cost: float) -> Evaluation:
        """``value``: a number, or a dict of metrics with the value as ``"default"``. Anything
        else, and nan or inf (a diverged training run), is a failed evaluation that says so."""
        if isinstance(value, dict):
            metrics = {**metrics, **{k: v for k, v in value.items() if k != "default"}}
        value = _default(value)
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            return Evaluation(arch, 0.0, {**metrics, "failed": f"{self.what} is {value!r}, not a finite number"},
                              cost=cost)
        if self.sign < 0:
            metrics = {**metrics, "value": float(value)}
        return Evaluation(arch, self.sign * float(value) + 0.0, metrics, cost=cost)  # + 0.0: no -0.0


def _default(value: Any) -> Any:
    """A result as NNI's trial API reports it: a number, or a dict of metrics with it as ``"default"``."""
    return value.get("default") if isinstance(value, dict) else value


class CallableEvaluator(Evaluator):
    """Score with any function ``arch string -> float`` (a proxy, a surrogate, your own
    training script); on a hyperparameter space it is handed the parameter dict instead. It
    may return a dict of metrics whose ``"default"`` is the score, as a trial may report.
    ``fn`` may be given as an import path ``"package.module:function"``, which is how
    ``python train.py evaluator=function evaluator.fn=...`` names it. ``optimize_mode``:
    ``"maximize"`` (default) or ``"minimize"`` its value (:class:`Objective`).

    An exception the function raises (a configuration it cannot train, out of memory) is a
    failed evaluation, as a crashing trial script is: ``metrics["failed"]`` names it and
    ``metrics["traceback"]`` ends with where, and the search goes on, one evaluation at a
    time or many. A search that stopped at it would meet it again on ``resume=``.
    """

    def __init__(self, space: SearchSpace, fn: Callable[[str], float] | str, name: str | None = None,
                 optimize_mode: str = "maximize"):
        self.objective = Objective("function evaluator", optimize_mode, "the function's value")
        if isinstance(fn, str):
            name = name or fn
            fn = _import_callable(fn)
        self.space, self.fn = space, fn
        self.fingerprint = f"callable:{name or getattr(fn, '__qualname__', 'fn')}{self.objective.suffix}"

    def evaluate(self, arch: str) -> Evaluation:
        start = time.perf_counter()
        parameters = self.space.parameters(arch)
        try:
            value = self.fn(arch if parameters is None else parameters)
        except Exception as err:
            why = {"failed": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
            return Evaluation(arch, 0.0, why, cost=time.perf_counter() - start)
        return self.objective.evaluation(arch, value, {}, cost=time.perf_counter() - start)


class TrialEvaluator(Evaluator):
    """Score by running your own training script, once per evaluation (:mod:`rlnas.trial`).

    ``command`` runs in the trial's own working directory, ``workdir/<trial id>`` (the
    runner makes ``workdir`` ``RUN_DIR/trials``); a word of it naming a file relative to
    where ``train.py`` started (``python my_train.py``) is made absolute first. The trial
    gets ``RLNAS_PARAMETERS`` (the parameter dict as JSON; ``{"arch": <its string>}`` on a
    cell space), ``RLNAS_RESULT_FILE``, ``RLNAS_TRIAL_ID`` and ``RLNAS_SEED``, and keeps its
    output in ``stdout.log`` and ``stderr.log`` there. Its score is its last final result;
    a trial that crashes, runs past ``timeout`` seconds or reports no final result is a
    failed evaluation (``metrics["failed"]`` why, with its exit code and the tail of its
    stderr; behind the store it earns the lowest score seen, :class:`StoredEvaluator`), and
    the search goes on. ``optimize_mode="minimize"`` searches for the lowest result (a loss),
    as NNI's does: scores, and the curves early stopping reads, are then ``-value``.

    ``early_stopping`` (:mod:`rlnas.early_stopping`, e.g. ``{"rule": "median", "start_step":
    5}``) is asked after each intermediate result; a trial it stops scores the result it
    was stopped at, ``metrics["stopped_at"]`` (the number of results by then). ``metrics["resource"]``
    counts every trial's intermediate results (its epochs, say).
    """

    POLL = 0.05  # seconds between looks at a running trial's results

    def __init__(self, space: SearchSpace, command: str, timeout: float | None = None, seed: int = 0,
                 workdir: str | Path | None = None, early_stopping: dict | None = None,
                 optimize_mode: str = "maximize"):
        if not isinstance(command, str) or not shlex.split(command):
            raise ValueError(f"trial evaluator: command={command!r} must be a shell command, "
                             "e.g. evaluator.command='python my_train.py'")
        check("trial evaluator", {"timeout": timeout, "seed": seed}, {
            "timeout": Range(0, low_open=True, optional=True, none_means="no time limit"),
            "seed": INT_AT_LEAST_0})
        self.space, self.command, self.timeout, self.seed = space, command, timeout, seed
        self.objective = Objective("trial evaluator", optimize_mode, "the trial's result")
        self.rule = make_rule(early_stopping)
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="rlnas-trials-"))
        self.argv = files_made_absolute(command, Path())
        self.fingerprint = f"trial:{command}{self.objective.suffix}"

    def evaluate(self, arch: str) -> Evaluation:
        trial_id = hashlib.sha256(arch.encode()).hexdigest()[:16]
        here = self.workdir / trial_id
        shutil.rmtree(here, ignore_errors=True)  # a trial run again (after a crash) starts afresh
        here.mkdir(parents=True)
        results = here / "results.jsonl"
        parameters = self.space.parameters(arch)
        env = {**os.environ, trial.PARAMETERS: json.dumps({"arch": arch} if parameters is None else parameters),
               trial.RESULT_FILE: str(results), trial.TRIAL_ID: trial_id, trial.SEED: str(self.seed),
               trial.PARENT: str(os.getpid())}
        start = time.monotonic()
        deadline = None if self.timeout is None else start + self.timeout
        timed_out, stopped_at, seen = False, None, 0
        with open(here / "stdout.log", "wb") as out, open(here / "stderr.log", "wb") as err:
            process = subprocess.Popen(self.argv, cwd=here, env=env, stdout=out, stderr=err, start_new_session=True)
            try:
                while (code := _exit_code(process, self.POLL)) is None:
                    if deadline is not None and time.monotonic() > deadline:
                        timed_out = True
                        break
                    curve = self._curve(_read_results(results)) if self.rule is not None else []
                    if len(curve) > seen:  # asked at every step, however many came since the last look
                        others = self._others(trial_id)
                        stopped_at = next((n for n in range(seen + 1, len(curve) + 1)
                                           if self.rule.should_stop(curve[:n], others, trial_id)), None)
                        seen = len(curve)
                        if stopped_at is not None:
                            break
            finally:  # stopped, timed out, or the search interrupted (Ctrl-C): no trial outlives its evaluation
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)  # the script and anything it started
                code = process.wait()
        seconds = time.monotonic() - start
        reports = _read_results(results)
        intermediate = [r["value"] for r in reports if r["type"] == "intermediate"]
        final = [r["value"] for r in reports if r["type"] == "final"]
        metrics: dict = {"trial_id": trial_id, "exit_code": code, "seconds": round(seconds, 3)}
        if intermediate:
            metrics.update(intermediate=intermediate, resource=len(intermediate))
        if stopped_at is not None and not final:
            return self.objective.evaluation(arch, intermediate[stopped_at - 1], {**metrics, "stopped_at": stopped_at},
                                             cost=seconds)
        # A trial the rule stopped may have reported its final result before the kill landed:
        # it finished, and the kill's exit code says nothing about it.
        why = (f"timed out after {self.timeout:g} s" if timed_out
               else f"exited with code {code}" if code != 0 and stopped_at is None
               else "reported no final result" if not final else None)
        if why is not None:
            tail = (here / "stderr.log").read_bytes()[-2000:].decode(errors="replace")
            return Evaluation(arch, 0.0, {**metrics, "failed": f"trial {why}", "stderr_tail": tail}, cost=seconds)
        return self.objective.evaluation(arch, final[-1], metrics, cost=seconds)

    def _curve(self, reports: list[dict]) -> list[float]:
        """The intermediate results as scores (higher better), which is how the rules read them."""
        return [self.objective.sign * float(_default(r["value"])) for r in reports if r["type"] == "intermediate"]

    def _others(self, trial_id: str) -> list[tuple[str, list[float], bool]]:
        """Every other trial's curve in the working directory, and whether it completed."""
        curves = []
        for path in self.workdir.glob("*/results.jsonl"):
            if path.parent.name != trial_id:
                reports = _read_results(path)
                curves.append((path.parent.name, self._curve(reports), any(r["type"] == "final" for r in reports)))
        return curves


def _exit_code(process: subprocess.Popen, seconds: float) -> int | None:
    try:
        return process.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


def files_made_absolute(command: str, base: Path) -> list[str]:
    """``command``'s words, those naming a file under ``base`` made absolute: a trial runs
    in a directory of its own. absolute(), not resolve(): a venv's python is a symlink out
    of the venv."""
    return [str((base / word).absolute()) if (base / word).is_file() else word for word in shlex.split(command)]


def _read_results(path: Path) -> list[dict]:
    """The complete lines of a trial's result file (one may be half written)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]


def _import_callable(path: str) -> Callable[[str], float]:
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ValueError(f"evaluator function {path!r} must be an import path 'package.module:function'")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import evaluator function {path!r}: {err}") from err
    if not callable(fn):
        raise ValueError(f"evaluator function {path!r} is not callable")
    return fn


class StoredEvaluator(Evaluator):
    """Any evaluator behind the durable store: repeated architectures are answered from
    the store (``cached=True``) and never paid for twice; new ones are committed at once,
    tagged with ``run``.

    A failed evaluation (``metrics["failed"]``: a crashed trial, a dead worker, a diverged
    supernet) is stored as its evaluator gave it, and answered with the lowest score a
    successful one has earned under this evaluator so far. A fixed score would be the best
    of all wherever scores are negative (a loss minimised, say), and an agent would learn to
    make trials crash; the lowest seen never pays a failure more than a result already in,
    on any scale, and the store makes it the same after a resume. Before any result is in
    there is no scale to go by, and a failure earns 0: above every result to come when
    scores are negative.
    """

    def __init__(self, evaluator: Evaluator, store: EvaluationStore, run: str | None = None):
        self.inner, self.store, self.run = evaluator, store, run
        self.space, self.fingerprint = evaluator.space, evaluator.fingerprint

    def evaluate(self, arch: str) -> Evaluation:
        evaluation = self.lookup(arch)
        if evaluation is None:
            evaluation = self.record(self.inner.evaluate(arch))
        if "failed" in evaluation.metrics:  # read from the store, which every worker and env writes
            lowest = min((e.score for e in self.store.history(self.fingerprint) if "failed" not in e.metrics),
                         default=0.0)
            return dataclasses.replace(evaluation, score=lowest)
        return evaluation

    def lookup(self, arch: str) -> Evaluation | None:
        """The stored evaluation of ``arch`` under this evaluator's fingerprint, if any."""
        return self.store.get(self.fingerprint, arch)

    def record(self, evaluation: Evaluation) -> Evaluation:
        """Commit an evaluation (paid for here, or by a parallel worker) as this run's, and
        return it as stored: a score of nan or inf is a failed evaluation, never a row lost
        (SQLite keeps no nan) nor a reward that would poison an agent's gradients."""
        if not math.isfinite(evaluation.score):
            evaluation = dataclasses.replace(evaluation, score=0.0, metrics={
                **evaluation.metrics, "failed": f"score {evaluation.score!r} is not a finite number"})
        self.store.put(self.fingerprint, evaluation, self.run)
        return evaluation

    def attach_run(self, run_dir: Path, run_id: str) -> None:
        self.inner.attach_run(run_dir, run_id)
        self.fingerprint = self.inner.fingerprint

    def close(self) -> None:
        self.inner.close()


class SupernetEvaluator(Evaluator):
    """Score with a weight-sharing supernet (:mod:`rlnas.supernet`) that a backend
    (:mod:`rlnas.workers`) serves: ``process`` (default) for a worker that owns the
    device, ``ray`` for a pool of actors, ``inline`` for this process.

    The worker starts at the first evaluation. Pickling this evaluator (as
    ``AsyncVectorEnv`` does for its env workers) gives a client of the same worker, so
    every env trains and reads one set of shared weights.

    The store and ``enas`` mode: a score there depends on the weights when it was taken
    (``metrics["weight_version"]``). The store keeps the first score of an architecture
    and answers repeats with it, unchanged: re-scoring would pay again for an
    architecture already paid for. Such scores only mean something within their run,
    so the fingerprint names the run, and another run never reads them as its own.
    ``oneshot`` scores depend only on the settings and the seed, and are shared.
    """

    def __init__(self, space: SearchSpace, backend: str = "process", workers: int = 1, address: str | None = None,
                 checkpoint: str | Path | None = None, checkpoint_every: int = 1, **settings):
        """``settings`` are :class:`~rlnas.supernet.SupernetTrainer`'s (``dataset``, ``mode``,
        ``warmup_epochs``, ``train_steps``, ``lr``, ...), checked here, before a worker starts."""
        import inspect

        from rlnas.datasets import check_dataset
        from rlnas.supernet import SupernetTrainer, check_settings
        from rlnas.workers import BACKENDS

        signature = inspect.signature(SupernetTrainer)
        try:
            bound = signature.bind(space, **settings)
        except TypeError as err:
            raise TypeError(f"supernet evaluator: {err}; its settings are "
                            f"{', '.join(list(signature.parameters)[1:])}") from err
        bound.apply_defaults()
        kwargs = bound.arguments
        kwargs["train_steps"] = check_settings(*(kwargs[key] for key in (
            "mode", "warmup_epochs", "train_steps", "batch_size", "lr", "channels", "cells_per_stage")))
        check_dataset(kwargs["dataset"], kwargs["data_root"], kwargs["download"])
        if backend not in BACKENDS:
            raise ValueError(f"unknown evaluator backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if workers < 1 or checkpoint_every < 1:
            raise ValueError(f"workers and checkpoint_every must be >= 1, got workers={workers}, "
                             f"checkpoint_every={checkpoint_every}")
        self.space, self.mode, self.trainer_kwargs = space, kwargs["mode"], dict(kwargs)
        self.backend_name, self.workers, self.address = backend, workers, address
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        # What a score means: every setting but where the data lives and which device runs it.
        recipe = ":".join(f"{key}={value}" for key, value in kwargs.items()
                          if key not in ("space", "device", "data_root", "download"))
        self.fingerprint = f"supernet:{space.name}:{recipe}"
        self._backend = None

    def attach_run(self, run_dir: Path, run_id: str) -> None:
        """Checkpoint the supernet beside the run, so ``resume=`` continues its weights."""
        self.checkpoint = self.checkpoint or Path(run_dir) / "supernet.pt"
        if self.mode == "enas" and ":run=" not in self.fingerprint:
            self.fingerprint += f":run={run_id}"

    @property
    def backend(self):
        if self._backend is None:
            from rlnas.workers import make_backend

            self._backend = make_backend(self.backend_name, self.trainer_kwargs, self.checkpoint,
                                         self.checkpoint_every, self.workers, self.address)
        return self._backend

    def evaluate(self, arch: str) -> Evaluation:
        return self.evaluate_many([arch])[0]

    def evaluate_many(self, archs: list[str]) -> list[Evaluation]:
        """Score several architectures as one batch (in parallel on a Ray pool)."""
        return self.backend.evaluate(archs)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __getstate__(self) -> dict:
        import threading

        from rlnas.workers import ProcessBackend, WorkerClient

        if self._backend is None and self.backend_name == "process":
            # Usually called while multiprocessing pickles another process's arguments; a
            # spawn from this thread would clobber that pickling's state, so spawn elsewhere.
            starter = threading.Thread(target=lambda: self.backend)
            starter.start()
            starter.join()
        backend = self.backend
        if not isinstance(backend, ProcessBackend | WorkerClient):
            raise TypeError(f"a supernet evaluator with backend={self.backend_name!r} cannot be sent to another "
                            "process; use backend=process to share one worker between processes")
        return {**self.__dict__, "_backend": backend if isinstance(backend, WorkerClient) else backend.client}


EVALUATORS: dict[str, type[Evaluator]] = {
    "tabular": TabularEvaluator,
    "scratch": ScratchEvaluator,
    "supernet": SupernetEvaluator,
    "nats": NATSBenchEvaluator,
    "function": CallableEvaluator,
    "trial": TrialEvaluator,
}


def make_evaluator(name: str, space: SearchSpace, **kwargs) -> Evaluator:
    """Build an evaluator by name for ``space``; kwargs go to its constructor."""
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r}; choose from {', '.join(EVALUATORS)}")
    return EVALUATORS[name](space=space, **kwargs)
