"""Does the scratch evaluator's score measure the trained network?

Samples ``--cells`` NASNet cells (seeded), trains each once with the scratch recipe for
``--epochs`` epochs (``ScratchEvaluator.train``, the evaluator=scratch settings) and reads
its validation accuracy three ways: in eval mode with the running BatchNorm averages
training left behind, with batch statistics (train-mode forward over the whole split, what
the weights do when BatchNorm normalises by the data it sees), and in eval mode after
recalibrating the averages on the training split, as the evaluator does before scoring.
Prints min / median / mean, how many cells score at chance (below 0.15; 10 classes), and
seconds per cell for training and for the recalibration.

    python benchmarks/scratch_scores.py [--cells 24] [--epochs 1] [--threads 1]

Run it under ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``
to see what an AVX2 machine scores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rlnas.core.context import RunContext
from rlnas.evaluators import ScratchEvaluator
from rlnas.networks.measure import recalibrate_batchnorm
from rlnas.spaces import NASNetSpace


def accuracy(model: torch.nn.Module, split, train_mode: bool) -> float:
    model.train(train_mode)
    with torch.no_grad():
        return float((model(split.x).argmax(1) == split.y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = NASNetSpace()
    evaluator = ScratchEvaluator(space, epochs=args.epochs, run=RunContext(threads=args.threads))
    rng = np.random.default_rng(args.seed)
    archs = [space.to_string(space.sample(rng)) for _ in range(args.cells)]
    val = evaluator.data.valid
    rows: dict[str, list[float]] = {"running averages": [], "recalibrated": [], "batch statistics": []}
    train_seconds = recalibrate_seconds = 0.0
    torch.set_num_threads(args.threads)  # train() runs outside evaluate(), which would set it
    for arch in archs:
        start = time.perf_counter()
        model, _ = evaluator.train(arch, recalibrate=False)
        train_seconds += time.perf_counter() - start
        rows["running averages"].append(accuracy(model, val, train_mode=False))
        rows["batch statistics"].append(accuracy(model, val, train_mode=True))
        start = time.perf_counter()
        recalibrate_batchnorm(model, evaluator.data.train.x, evaluator.batch_size)
        recalibrate_seconds += time.perf_counter() - start
        rows["recalibrated"].append(accuracy(model, val, train_mode=False))

    print(f"{args.cells} NASNet cells, {args.epochs} epoch(s) of the scratch recipe on digits, "
          f"torch {torch.__version__}, {args.threads} thread(s), CPU kernels {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'validation accuracy':<22}{'min':>8}{'median':>8}{'mean':>8}{'at chance':>11}")
    for name, values in rows.items():
        v = np.array(values)
        print(f"{name:<22}{v.min():8.3f}{np.median(v):8.3f}{v.mean():8.3f}{int((v < 0.15).sum()):>7} / {len(v)}")
    print(f"seconds per cell: training {train_seconds / args.cells:.2f}, "
          f"recalibration {recalibrate_seconds / args.cells:.3f}")


if __name__ == "__main__":
    main()
