"""Searching a user's model: the CNN example (examples/cnn_space.py) on digits, on the CPU.

Per method and seed, a search of ``--evaluations`` distinct architectures, each trained
stand-alone by ``evaluator=train``'s recipe (its defaults: 4 epochs, SGD, cosine) and
scored on the validation split, as ``python train.py env=model
env.space=examples/cnn_space.py:Net evaluator=train agent=METHOD`` runs it. The best by
validation accuracy is then retrained with another training seed (``--retrain-seed``) and
scored on the test split: the search's stand-alone test accuracy, free of the luck of the
seed it was selected with. Each search's wall time is its own (no store is shared).

Then the supernet (``evaluator=supernet env=model``, oneshot: warm-up only) scores
``--architectures`` sampled architectures, which are also trained stand-alone, and the
Kendall tau between the two rankings says how far the supernet can stand in for training.

    python benchmarks/model_space_search.py [--methods planner evolution random ppo dreamer_v2]
        [--seeds 5] [--evaluations 50] [--architectures 30] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from scipy.stats import kendalltau

from rlnas.agents import make_agent
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget
from rlnas.evaluators.supernet import SupernetTrainer
from rlnas.evaluators.train import TrainEvaluator
from rlnas.nn import ModelSpace

SPACE = "examples/cnn_space.py:Net"


def search(method: str, seed: int, evaluations: int, retrain_seed: int) -> dict:
    torch.set_num_threads(1)
    space = ModelSpace(SPACE)
    start = time.perf_counter()
    agent = make_agent(method, NASEnv(space, TrainEvaluator(space)), seed=seed)
    agent.learn(Budget(evaluations=evaluations))
    wall = time.perf_counter() - start
    best = agent.env.best
    retrained = TrainEvaluator(space, seed=retrain_seed).evaluate(best.arch)
    return {"method": method, "seed": seed, "evaluations": len(agent.env.evaluations), "wall_s": wall,
            "val": best.score, "test": retrained.metrics["test_acc"], "arch": best.arch}


def supernet_tau(architectures: int, seed: int = 0) -> tuple[float, float]:
    """Kendall tau of the supernet's scores against stand-alone validation accuracy."""
    torch.set_num_threads(1)
    space = ModelSpace(SPACE)
    rng = np.random.default_rng(seed)
    archs = list(dict.fromkeys(space.to_string(space.sample(rng)) for _ in range(4 * architectures)))[:architectures]
    trainer = SupernetTrainer(space, mode="oneshot", warmup_epochs=5)
    trainer.warm_up()
    supernet = [trainer.evaluate(a).score for a in archs]
    alone = [TrainEvaluator(space).evaluate(a).score for a in archs]
    return float(kendalltau(supernet, alone).statistic), float(np.mean(alone))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=["planner", "evolution", "random", "ppo", "dreamer_v2"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evaluations", type=int, default=50)
    parser.add_argument("--architectures", type=int, default=30)
    parser.add_argument("--retrain-seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    jobs = [(m, s, args.evaluations, args.retrain_seed) for m in args.methods for s in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        tau = pool.submit(supernet_tau, args.architectures) if args.architectures else None
        runs = list(pool.map(search, *zip(*jobs, strict=True)))
    print(f"CNN example on digits, {args.evaluations} evaluations, {args.seeds} seeds (median over seeds)")
    print(f"{'method':<12} {'val of best':>12} {'test, retrained':>16} {'wall s':>8}")
    for method in args.methods:
        mine = [r for r in runs if r["method"] == method]
        print(f"{method:<12} {np.median([r['val'] for r in mine]):>12.4f} "
              f"{np.median([r['test'] for r in mine]):>16.4f} {np.median([r['wall_s'] for r in mine]):>8.0f}")
    if tau is not None:
        kendall, mean = tau.result()
        print(f"supernet (oneshot, 5 warm-up epochs) vs stand-alone on {args.architectures} sampled architectures: "
              f"Kendall tau {kendall:.3f} (their mean stand-alone accuracy {mean:.4f})")


if __name__ == "__main__":
    main()
