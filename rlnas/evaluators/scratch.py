"""Score by training the child network from scratch and measuring it on held-out data."""

from __future__ import annotations

import contextlib
import fcntl
import math
import time
from dataclasses import dataclass
from pathlib import Path

from rlnas.core import checkpoint
from rlnas.core.settings import INT_AT_LEAST_0, INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, Range, setting
from rlnas.core.store import Evaluation
from rlnas.data.sources import load_source
from rlnas.evaluators.base import Evaluator, EvaluatorConfig
from rlnas.nn.space import ModelSpace

BEST_MODEL = "best_model.pt"


@dataclass
class ScratchConfig(EvaluatorConfig):
    epochs: int = setting(4, "training epochs per child", INT_AT_LEAST_1)
    batch_size: int = setting(64, "minibatch size", INT_AT_LEAST_1)
    lr: float = setting(0.1, "peak learning rate of SGD (Nesterov, momentum 0.9) under a one-cycle schedule", POSITIVE)
    weight_decay: float = setting(3e-4, "SGD's weight decay", NON_NEGATIVE)
    channels: int = setting(8, "channels of the first stage", INT_AT_LEAST_1)
    cells_per_stage: int = setting(1, "cells in each of the three stages", INT_AT_LEAST_0)
    seed: int = setting(0, "the training seed: part of what a score means", INT_AT_LEAST_0)
    latency_batch: int | None = setting(None, "also time each trained child's forward pass on a batch this size "
                                              "(metrics latency_ms, latency_iqr_ms)",
                                        Range(1, integer=True, none_means="not measured"))


class ScratchEvaluator(Evaluator):
    """Train the child from scratch and score it on the validation split.

    BatchNorm's statistics are recalibrated before scoring: after a few dozen steps the
    running averages still describe the early weights, and eval accuracy fell to chance.
    Training is seeded from ``seed`` alone on the run's ``threads``, so a cell scores the
    same on every machine with the same CPU kernels (docs/reproducibility.md). The run's
    best child is kept as ``best_model.pt`` by every worker alike, under a lock.
    """

    Config = ScratchConfig
    name = "scratch"

    def __init__(self, space=None, *, config: ScratchConfig | None = None, run=None, **settings):
        super().__init__(space, config=config, run=run, **settings)
        c = self.config
        source = load_source(self.run.dataset)
        self.data = source.load()
        self.costs = ("params", "flops") + (("latency_ms",) if c.latency_batch is not None else ())
        self.fingerprint = f"{self.name}:{self.recipe(source.fingerprint)}"
        if c.latency_batch is not None:  # stored rows without a latency must not answer this evaluator
            self.fingerprint += f":latency-b{c.latency_batch}-{self.run.device}"
        self.best_model_path: Path | None = self.run.path(BEST_MODEL)
        self.best_model_score = -math.inf  # the kept file's score when last read: it only rises

    def check_space(self, space):
        if isinstance(super().check_space(space), ModelSpace):
            raise ValueError("the scratch evaluator trains the cells rlnas ships; a model space (env=model) is "
                             "trained by evaluator=train")
        return space

    def recipe(self, data: str) -> str:
        """What a score means: the space, the data and the training."""
        c = self.config
        return (f"{self.space.name}:{data}:e{c.epochs}:b{c.batch_size}:lr{c.lr}:wd{c.weight_decay}:c{c.channels}"
                f":n{c.cells_per_stage}:s{c.seed}:t{self.run.threads or 'all'}:bn-recalibrated")

    @property
    def network_settings(self) -> dict[str, int]:
        """``build_network``'s arguments besides the space and the architecture."""
        return {"in_channels": self.data.input_shape[0], "num_classes": self.data.num_classes,
                "channels": self.config.channels, "cells_per_stage": self.config.cells_per_stage}

    def evaluate(self, arch: str) -> Evaluation:
        import torch

        from rlnas.networks.measure import count_flops, count_parameters, measure_latency

        start, device, batch = time.perf_counter(), self.run.device, self.config.latency_batch
        threads = torch.get_num_threads()
        torch.set_num_threads(self.run.threads or threads)
        try:
            # An agent may step the env inside torch.no_grad() (PPO's rollouts do); training
            # the child needs gradients whatever the caller's mode.
            with torch.enable_grad():
                model, final_loss = self.train(arch)
            (val, val_loss), (test, _) = (self._measure(model, split) for split in (self.data.valid, self.data.test))
            if batch is not None:
                latency, noise = measure_latency(model, self.data.input_shape, batch, device)
        finally:
            torch.set_num_threads(threads)
        metrics = {"val_acc": val, "val_loss": val_loss, "test_acc": test, "final_loss": final_loss,
                   "params": count_parameters(model), "flops": count_flops(model.cpu(), self.data.input_shape)}
        if batch is not None:
            metrics.update(latency_ms=latency, latency_iqr_ms=noise)
        self._save_if_best(arch, model, metrics)
        return Evaluation(arch, val, metrics, cost=time.perf_counter() - start)

    def train(self, arch: str, recalibrate: bool = True):
        """The child of ``arch`` trained (eval mode) and its last loss."""
        import torch

        from rlnas.networks.cells import build_network
        from rlnas.networks.measure import recalibrate_batchnorm

        c, data, device = self.config, self.data, self.run.device
        torch.manual_seed(c.seed)
        model = build_network(self.space, arch, **self.network_settings).to(device)
        steps = c.epochs * math.ceil(len(data.train.y) / c.batch_size)
        opt = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=0.9, nesterov=True, weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, c.lr, total_steps=steps)
        gen = torch.Generator().manual_seed(c.seed)
        x, y = data.train.x.to(device), data.train.y.to(device)
        model.train()
        for _ in range(c.epochs):
            for idx in torch.randperm(len(y), generator=gen).split(c.batch_size):
                loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        if recalibrate:
            recalibrate_batchnorm(model, x, c.batch_size)
        return model.eval(), float(loss.detach())

    def _measure(self, model, split) -> tuple[float, float]:
        """Accuracy and mean cross-entropy on one split, in eval mode."""
        import torch

        model.eval()
        with torch.no_grad():
            logits, y = model(split.x.to(self.run.device)), split.y.to(self.run.device)
        return float((logits.argmax(1) == y).float().mean()), float(torch.nn.functional.cross_entropy(logits, y))

    def _save_if_best(self, arch: str, model, metrics: dict) -> None:
        """Keep the run's best child on disk, atomically, under a lock every worker takes."""
        path = self.best_model_path
        if path is None or not path.parent.is_dir() or metrics["val_acc"] <= self.best_model_score:
            return
        with open(path.with_name(path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with contextlib.suppress(FileNotFoundError):
                kept = checkpoint.load(path)
                if kept["evaluator"] == self.fingerprint:
                    self.best_model_score = max(self.best_model_score, kept["metrics"]["val_acc"])
            if metrics["val_acc"] > self.best_model_score:
                checkpoint.save({"arch": self.space.describe(arch), "space": self.space.config.to_dict(),
                                 "network": self.network_settings,
                                 "state_dict": model.state_dict(), "metrics": metrics,
                                 "evaluator": self.fingerprint}, path)
                self.best_model_score = metrics["val_acc"]
