"""Score a model space's architecture by training the network it names on the run's data.

The built-in recipe (SGD with Nesterov momentum or AdamW, a cosine or one-cycle schedule,
random crops and flips as a switch, mixed precision on CUDA), or your own function::

    def fit(model, data, device):   # data: rlnas.data.datasets.Dataset (train, valid, test)
        ...
        return {"default": val_acc, "test_acc": test_acc}
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from rlnas.core.imports import import_callable
from rlnas.core.settings import INT_AT_LEAST_0, INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, OneOf, Range, Text, setting
from rlnas.core.store import Evaluation
from rlnas.evaluators.base import Evaluator, EvaluatorConfig, Objective
from rlnas.evaluators.scratch import ScratchEvaluator
from rlnas.nn.space import ModelSpace


@dataclass
class TrainConfig(EvaluatorConfig):
    epochs: int = setting(4, "training epochs per network", INT_AT_LEAST_1)
    batch_size: int = setting(64, "minibatch size", INT_AT_LEAST_1)
    optimizer: str = setting("sgd", "sgd (Nesterov, momentum 0.9) or adamw", OneOf(("sgd", "adamw")))
    lr: float = setting(0.05, "peak learning rate", POSITIVE)
    weight_decay: float = setting(3e-4, "weight decay", NON_NEGATIVE)
    schedule: str = setting("cosine", "the learning rate over training: cosine (to 0), onecycle or constant",
                            OneOf(("cosine", "onecycle", "constant")))
    augment: bool = setting(False, "random crops (padding 1/8 of the side) and horizontal flips of training images")
    amp: bool = setting(True, "mixed precision (bfloat16 autocast) on CUDA; CPU trains in float32")
    workers: int = setting(0, "DataLoader worker processes (pinned memory on CUDA)", INT_AT_LEAST_0)
    seed: int = setting(0, "the training seed: part of what a score means", INT_AT_LEAST_0)
    fn: str | None = setting(None, "your training function package.module:function(model, data, device) returning "
                                   "the score or {'default': score, ...}",
                             Text("an import path", none_means="the built-in recipe"))
    latency_batch: int | None = setting(None, "also time each trained network's forward pass on a batch this size",
                                        Range(1, integer=True, none_means="not measured"))


class TrainEvaluator(ScratchEvaluator):
    """Build the network an architecture names (:meth:`rlnas.nn.ModelSpace.build`), train it,
    and score it on the validation split; test accuracy, parameters, MACs and wall time too."""

    Config = TrainConfig
    name = "train"

    def __init__(self, space=None, *, config: TrainConfig | None = None, run=None, **settings):
        super().__init__(space, config=config, run=run, **settings)
        fn = self.config.fn
        self.fn = import_callable(fn, "training function") if fn else None
        self.objective = Objective(self.name, "maximize", f"training function {fn}'s result")

    def recipe(self, data: str) -> str:
        c = self.config
        return (f"{self.space.config.space}:{json.dumps(self.space.kwargs, sort_keys=True)}:{data}:"
                + ":".join(f"{k}={getattr(c, k)}" for k in ("epochs", "batch_size", "optimizer", "lr", "weight_decay",
                                                            "schedule", "augment", "seed", "fn"))
                + f":t{self.run.threads or 'all'}")

    def check_space(self, space):
        if not isinstance(Evaluator.check_space(self, space), ModelSpace):
            raise ValueError(f"the train evaluator trains model spaces (env=model); search space "
                             f"{getattr(space, 'name', space)!r} is trained by evaluator=scratch")
        return space

    @property
    def network_settings(self) -> dict[str, int]:
        """The arguments the data gives the model's constructor (kept in ``best_model.pt``)."""
        return self.space.network_kwargs(self.data.input_shape, self.data.num_classes)

    def build(self, arch: str):
        return self.space.build(arch, self.data.input_shape, self.data.num_classes).to(self.run.device)

    def evaluate(self, arch: str) -> Evaluation:
        if self.fn is None:
            return super().evaluate(arch)
        import torch

        start = time.perf_counter()
        torch.manual_seed(self.config.seed)
        model = self.build(arch)
        with torch.enable_grad():
            value = self.fn(model, self.data, self.run.device)
        return self.objective.evaluation(arch, value, {}, time.perf_counter() - start)

    def train(self, arch: str, recalibrate: bool = True):
        """The network of ``arch`` trained by the built-in recipe (eval mode), and its last loss."""
        import torch
        import torch.nn.functional as F

        from rlnas.networks.measure import recalibrate_batchnorm

        c, data, device = self.config, self.data, self.run.device
        torch.manual_seed(c.seed)
        model = self.build(arch)
        cuda = device.startswith("cuda")
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(data.train.x, data.train.y), batch_size=c.batch_size, shuffle=True,
            generator=torch.Generator().manual_seed(c.seed), num_workers=c.workers, pin_memory=cuda)
        steps = c.epochs * len(loader)
        if c.optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=0.9, nesterov=True,
                                  weight_decay=c.weight_decay)
        else:
            opt = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        sched = (torch.optim.lr_scheduler.OneCycleLR(opt, c.lr, total_steps=steps) if c.schedule == "onecycle" else
                 torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if c.schedule == "cosine" else
                 torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0))
        gen = torch.Generator().manual_seed(c.seed + 1)
        model.train()
        for _ in range(c.epochs):
            for x, y in loader:
                x, y = x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)
                if c.augment and x.dim() == 4:
                    x = augment(x, gen)
                with torch.autocast("cuda", torch.bfloat16, enabled=cuda and c.amp):
                    loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        if recalibrate:
            recalibrate_batchnorm(model, data.train.x.to(device), c.batch_size)
        return model.eval(), float(loss.detach())


def augment(x, generator):
    """Random crops (zero padding of 1/8 of the side) and horizontal flips, one per image."""
    import torch

    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = (torch.randint(0, 2 * pad + 1, (n,), generator=generator) for _ in range(2))
    rows = (dy[:, None] + torch.arange(h)).to(x.device)
    cols = (dx[:, None] + torch.arange(w)).to(x.device)
    out = padded[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(x.shape[1], device=x.device)
                 [None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(3), out)
