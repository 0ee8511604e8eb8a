"""How well does the weight-sharing supernet rank architectures, and how much cheaper is it?

Samples ``--archs`` distinct NAS-Bench-201 cells (seeded), trains each stand-alone on digits
with ``--seeds`` training seeds (ScratchEvaluator, the evaluator=scratch recipe) and scores
each with one supernet (SupernetTrainer, warmed up one-shot with uniformly sampled paths,
then frozen). Prints Kendall's tau between the supernet's ranking and the stand-alone
ranking (mean over seeds, and a single seed), and, as the ceiling any proxy can reach, the
tau between two stand-alone seeds; then supernet evaluations per second (scoring only;
warm-up shown separately, paid once per search) and stand-alone training seconds per
architecture.

    python benchmarks/supernet_quality.py [--archs 50] [--seeds 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from rlnas.evaluators import ScratchEvaluator
from rlnas.evaluators.supernet import SupernetTrainer
from rlnas.spaces import NB201Space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup-epochs", type=int, default=30)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8, help="stand-alone training epochs (8: the retrain recipe)")
    parser.add_argument("--seeds", type=int, default=3, help="stand-alone training seeds per architecture")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = NB201Space()
    rng = np.random.default_rng(args.seed)
    archs: list[str] = []
    while len(archs) < args.archs:
        arch = space.to_string(space.sample(rng))
        if arch not in archs:
            archs.append(arch)

    start = time.perf_counter()
    runs = np.array([[ScratchEvaluator(space, epochs=args.epochs, channels=args.channels, seed=seed,
                                       device=args.device).evaluate(arch).score for arch in archs]
                     for seed in range(args.seeds)])
    train_seconds = (time.perf_counter() - start) / runs.size
    stand_alone = runs.mean(0)

    start = time.perf_counter()
    trainer = SupernetTrainer(space, mode="oneshot", warmup_epochs=args.warmup_epochs, channels=args.channels,
                              seed=args.seed, device=args.device)
    trainer.warm_up()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    warmup_seconds = time.perf_counter() - start
    trainer.evaluate(archs[0])  # first call pays one-off allocations
    start = time.perf_counter()
    supernet = [trainer.evaluate(arch).score for arch in archs]
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    eval_seconds = (time.perf_counter() - start) / len(archs)

    tau = kendalltau(stand_alone, supernet).statistic
    rho = spearmanr(stand_alone, supernet).statistic
    single = kendalltau(runs[0], supernet).statistic
    ceiling = np.mean([kendalltau(runs[i], runs[j]).statistic
                       for i in range(args.seeds) for j in range(i + 1, args.seeds)]) if args.seeds > 1 else np.nan
    print(f"supernet quality on NB201 / digits: {len(archs)} architectures, device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    print("| measure | value |\n|---|---:|")
    print(f"| Kendall tau, supernet vs stand-alone (mean of {args.seeds} seeds) | {tau:.3f} |")
    print(f"| Spearman rho, supernet vs stand-alone (mean of {args.seeds} seeds) | {rho:.3f} |")
    print(f"| Kendall tau, supernet vs stand-alone (one seed) | {single:.3f} |")
    print(f"| Kendall tau, stand-alone seed vs seed (the noise ceiling) | {ceiling:.3f} |")
    print(f"| stand-alone val acc, min / mean / max | {min(stand_alone):.3f} / {np.mean(stand_alone):.3f} / "
          f"{max(stand_alone):.3f} |")
    print(f"| supernet val acc, min / mean / max | {min(supernet):.3f} / {np.mean(supernet):.3f} / "
          f"{max(supernet):.3f} |")
    print(f"| stand-alone training, s per architecture ({args.epochs} epochs) | {train_seconds:.2f} |")
    print(f"| supernet warm-up, s (once per search; {args.warmup_epochs} epochs) | {warmup_seconds:.1f} |")
    print(f"| supernet evaluations per second | {1 / eval_seconds:.1f} |")
    print(f"| speed-up per evaluation | {train_seconds / eval_seconds:.0f}x |")


if __name__ == "__main__":
    main()
