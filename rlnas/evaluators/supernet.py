"""Score with a weight-sharing supernet: its trainer, the host that keeps it on a worker of
its own, and the evaluator. Two training modes:

* ``oneshot`` (SPOS, Guo et al. 2020): ``warmup_epochs`` of uniformly sampled paths, then
  frozen weights, so scores are comparable.
* ``enas`` (Pham et al. 2018): each evaluated architecture is first trained ``train_steps``
  SGD steps; each score records its ``weight_version`` (the optimizer steps before it).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rlnas.core import checkpoint
from rlnas.core.registry import BACKENDS
from rlnas.core.settings import (
    INT_AT_LEAST_0,
    INT_AT_LEAST_1,
    NON_NEGATIVE,
    POSITIVE,
    OneOf,
    Range,
    Settings,
    nested,
    setting,
)
from rlnas.core.store import Evaluation
from rlnas.data.sources import load_source
from rlnas.evaluators.base import Evaluator, EvaluatorConfig, failed
from rlnas.spaces import SearchSpace

MODES = ("oneshot", "enas")
CHECKPOINT = "supernet.pt"


@dataclass
class RetrainConfig(Settings):
    """The best architectures by supernet score, retrained stand-alone after the search."""

    top_k: int = setting(3, "architectures retrained; their test accuracy is the report's headline (0: none)",
                         INT_AT_LEAST_0)
    epochs: int = setting(8, "training epochs of each", INT_AT_LEAST_1)
    channels: int = setting(8, "channels of the first stage", INT_AT_LEAST_1)
    cells_per_stage: int = setting(1, "cells in each of the three stages", INT_AT_LEAST_0)

    @property
    def owner(self) -> str:
        return "supernet evaluator: retrain"


@dataclass
class SupernetConfig(EvaluatorConfig):
    mode: str = setting("enas", "enas: train each proposed architecture, interleaved with the search; oneshot: "
                                "uniform-sampling warm-up only, weights frozen during the search", OneOf(MODES))
    warmup_epochs: int = setting(1, "uniform-sampling epochs before the search (oneshot needs >= 1)", INT_AT_LEAST_0)
    train_steps: int | None = setting(None, "SGD steps on each evaluated architecture",
                                      Range(0, integer=True, none_means="the mode's: enas 5, oneshot 0"))
    channels: int = setting(8, "channels of the first stage", INT_AT_LEAST_1)
    cells_per_stage: int = setting(1, "cells in each of the three stages", INT_AT_LEAST_0)
    batch_size: int = setting(64, "minibatch size", INT_AT_LEAST_1)
    lr: float = setting(0.05, "SGD's learning rate (Nesterov)", POSITIVE)
    momentum: float = setting(0.9, "SGD's momentum", NON_NEGATIVE)
    weight_decay: float = setting(3e-4, "SGD's weight decay", NON_NEGATIVE)
    grad_clip: float = setting(5.0, "gradient norm clip", POSITIVE)
    valid_size: int | None = setting(None, "the fixed validation subset scores are taken on",
                                     Range(1, integer=True, none_means="the whole validation split"))
    seed: int = setting(0, "seeds the weights, the data stream and the warm-up", INT_AT_LEAST_0)
    checkpoint_every: int = setting(1, "evaluations between supernet checkpoints (1: a resumed run has the "
                                       "exact weights)", INT_AT_LEAST_1)
    retrain: RetrainConfig = nested(RetrainConfig, "the stand-alone retrain of the best architectures after the "
                                                   "search")

    def validate(self) -> None:
        if self.train_steps is None:
            self.train_steps = 5 if self.mode == "enas" else 0
        if self.mode == "oneshot" and (self.train_steps != 0 or self.warmup_epochs < 1):
            raise ValueError(f"{self.owner}: mode=oneshot trains only before the search: it needs warmup_epochs "
                             f">= 1 and train_steps=0 (or null), got warmup_epochs={self.warmup_epochs}, "
                             f"train_steps={self.train_steps}")
        if self.mode == "enas" and self.train_steps < 1:
            raise ValueError(f"{self.owner}: mode=enas trains each evaluated architecture: train_steps must be "
                             f">= 1, got {self.train_steps}")

    def recipe(self, data: str) -> str:
        """What a score means: the data, and every setting but how often it is saved."""
        return f"dataset={data}:" + ":".join(f"{key}={getattr(self, key)}" for key in (
            "mode", "warmup_epochs", "train_steps", "channels", "cells_per_stage", "batch_size", "lr",
            "momentum", "weight_decay", "grad_clip", "valid_size", "seed"))


class SupernetTrainer:
    """A supernet with its optimizer, data stream and weight version: what a host owns."""

    def __init__(self, space: SearchSpace, config: SupernetConfig | None = None, device: str = "cpu",
                 dataset: Any = None, **settings: Any):
        import torch

        from rlnas.networks.supernet import Supernet

        c = self.config = SupernetConfig.make(None if config is None else config.to_dict(), **settings)
        self.space, self.device = space, device
        data = load_source(dataset).load()
        if c.valid_size is not None and c.valid_size > len(data.valid.y):
            raise ValueError(f"supernet evaluator: valid_size must be in 1..{len(data.valid.y)} (the {data.name} "
                             f"validation split), got {c.valid_size}")
        self.train_x, self.train_y = data.train.x.to(device), data.train.y.to(device)
        self.valid_x, self.valid_y = (t[:c.valid_size].to(device) for t in (data.valid.x, data.valid.y))
        torch.manual_seed(c.seed)
        self.model = Supernet(space, data.input_shape[0], data.num_classes, c.channels, c.cells_per_stage).to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=c.lr, momentum=c.momentum, nesterov=True,
                                         weight_decay=c.weight_decay)
        self._generator = torch.Generator().manual_seed(c.seed)
        self._order = torch.randperm(len(self.train_y), generator=self._generator)
        self._cursor = 0
        self.version = 0  # optimizer steps taken so far
        self.warmed_up = c.warmup_epochs == 0

    # -- training -----------------------------------------------------------------------
    def _next_batch(self):
        import torch

        batch = self.config.batch_size
        if self._cursor + batch > len(self._order):
            self._order = torch.randperm(len(self.train_y), generator=self._generator)
            self._cursor = 0
        idx = self._order[self._cursor: self._cursor + batch].to(self.device)
        self._cursor += batch
        return self.train_x[idx], self.train_y[idx]

    def train_step(self, decisions: Sequence[int]) -> float:
        """One SGD step on path ``decisions``; a non-finite loss takes no step."""
        import torch
        import torch.nn.functional as F

        self.model.select(decisions)
        self.model.train()
        x, y = self._next_batch()
        with torch.enable_grad():
            loss = F.cross_entropy(self.model(x), y)
            if not torch.isfinite(loss):
                return loss.item()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
        self.version += 1
        return loss.item()

    def warm_up(self) -> None:
        """SPOS warm-up: a uniformly sampled path per minibatch, seeded by ``seed`` alone."""
        if self.warmed_up:
            return
        rng = np.random.default_rng(self.config.seed)
        for _ in range(self.config.warmup_epochs * (len(self.train_y) // self.config.batch_size)):
            self.train_step(self.space.sample(rng))
        self.warmed_up = True

    # -- scoring ------------------------------------------------------------------------
    def score(self, decisions: Sequence[int]) -> tuple[float, float]:
        """Accuracy and cross-entropy of path ``decisions`` on the validation subset (NaN if not finite)."""
        return self.model.score(decisions, self.valid_x, self.valid_y)

    def evaluate(self, arch: str) -> Evaluation:
        """Train (``enas``) and score one architecture; divergence is a failed evaluation."""
        start = time.perf_counter()
        decisions = self.space.from_string(arch)
        self.warm_up()
        for _ in range(self.config.train_steps):
            loss = self.train_step(decisions)
            if not math.isfinite(loss):
                return failed(arch, f"training loss is {loss} at weight version {self.version}",
                              {"weight_version": self.version}, time.perf_counter() - start)
        accuracy, loss = self.score(decisions)
        if not math.isfinite(accuracy):
            return failed(arch, f"non-finite logits at weight version {self.version}",
                          {"weight_version": self.version}, time.perf_counter() - start)
        return Evaluation(arch, accuracy, {"supernet_acc": accuracy, "supernet_loss": loss,
                                           "weight_version": self.version}, cost=time.perf_counter() - start)

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self._generator.get_state(), "order": self._order, "cursor": self._cursor,
                "version": self.version, "warmed_up": self.warmed_up}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # torch's optimizer keeps the given momentum tensors, not copies: copy first, so
        # two trainers never share state through an in-process handover.
        state = copy.deepcopy(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._generator.set_state(state["generator"])
        self._order, self._cursor = state["order"], state["cursor"]
        self.version, self.warmed_up = state["version"], state["warmed_up"]


class TrainerHost:
    """A trainer with its checkpoint, as a worker holds it: restarted from the file when there
    is one, else warmed up; saved after the first evaluation, then every ``checkpoint_every``
    evaluations that moved the weights."""

    def __init__(self, space: SearchSpace, config: SupernetConfig, device: str = "cpu",
                 checkpoint_path: str | Path | None = None, dataset: Any = None):
        self.trainer = SupernetTrainer(space, config, device, dataset)
        self.path = Path(checkpoint_path) if checkpoint_path else None
        if self.path is not None and self.path.is_file():
            self.trainer.load_state_dict(checkpoint.load(self.path))
        self.trainer.warm_up()
        self._saved_version: int | None = None
        self._unsaved = 0
        self._save_if_due(0)

    def evaluate(self, arch: str) -> Evaluation:
        evaluation = self.trainer.evaluate(arch)
        self._save_if_due(1)
        return evaluation

    def _save_if_due(self, evaluations: int) -> None:
        self._unsaved += evaluations
        version = self.trainer.version
        if self.path is None or version == self._saved_version or (
                self._saved_version is not None and self._unsaved < self.trainer.config.checkpoint_every):
            return
        checkpoint.save(self.trainer.state_dict(), self.path)
        self._saved_version, self._unsaved = version, 0

    def state_dict(self) -> dict[str, Any]:
        """What the checkpoint holds: the supernet, its optimizer and its data stream."""
        return self.trainer.state_dict()

    @property
    def version(self) -> int:
        return self.trainer.version


class SupernetEvaluator(Evaluator):
    """Score with a supernet on a worker of its own (the run's backend, started at the first
    evaluation); a dead worker is restarted from ``supernet.pt`` and its evaluation resent.
    ``enas`` scores depend on the weights when taken, so the fingerprint names the run;
    ``oneshot`` scores are shared, and ``parallel=N`` gives each worker a frozen copy."""

    Config = SupernetConfig
    name = "supernet"

    def __init__(self, space=None, *, config: SupernetConfig | None = None, run=None, **settings: Any):
        super().__init__(space, config=config, run=run, **settings)
        self.fingerprint = f"supernet:{self.space.name}:{self.config.recipe(load_source(self.run.dataset).fingerprint)}"
        if self.config.mode == "enas" and self.run.run_id is not None:
            self.fingerprint += f":run={self.run.run_id}"
        self._host = None

    @property
    def host(self):
        """The pool of one worker that holds the supernet, started on first use."""
        if self._host is None:
            backend = self.run.backend or BACKENDS.config("process")
            factory = partial(TrainerHost, self.space, self.config, self.run.device, self.run.path(CHECKPOINT),
                              self.run.dataset)
            gpus = 1 if str(self.run.device).startswith("cuda") else 0
            self._host = BACKENDS.get(backend.name)(factory, 1, backend, gpus=gpus, threads=None)
        return self._host

    def evaluate(self, arch: str) -> Evaluation:
        self.space.from_string(arch)  # a malformed string fails here, not on the worker
        return self.host.call("evaluate", arch)

    def close(self) -> None:
        if self._host is not None:
            self._host.close()
            self._host = None

    def __getstate__(self) -> dict:
        raise TypeError("a supernet evaluator holds its supernet's worker and cannot be sent to another process: "
                        "step its envs in this process (SyncVectorEnv), or score oneshot supernets with parallel=N")
