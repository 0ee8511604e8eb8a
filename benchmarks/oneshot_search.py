"""Differentiable one-shot search against sampled search on the supernet, on digits (CPU).

Per search space and seed:

* DARTS, GDAS and SNAS (their ``nas`` presets; ``--epochs`` overrides) train their mixed
  supernet and derive one cell, which is then trained stand-alone by the supernet
  evaluator's retrain recipe (its ``retrain`` settings) and scored on the test split;
* REINFORCE and Dreamer V2 search on the supernet evaluator (its defaults, hosted in this
  process) for as long as the one-shot searches took on average in that space,
  then the ``top_k`` cells with the best supernet scores are retrained by the same recipe
  and the one with the best stand-alone validation accuracy counts (train.py's headline).

Per (space, method) it prints the retrained cell's test accuracy, the search's wall time,
how many cells the search scored (a one-shot search: its one derived cell), and the share
of parameter-free ops in the cell (a collapse shows there).

    python benchmarks/oneshot_search.py [--spaces nb201 nasnet] [--methods ...] [--seeds 5]
        [--epochs N]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch

from rlnas.agents import make_agent
from rlnas.agents.darts import parameter_free_fraction
from rlnas.core.context import RunContext
from rlnas.core.registry import BACKENDS
from rlnas.core.store import Evaluation
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget, SearchMonitor
from rlnas.evaluators import SupernetEvaluator
from rlnas.search.build import retrainer
from rlnas.search.report import retrain_best
from rlnas.spaces import make_space

ONE_SHOT = ("darts", "gdas", "snas")
SAMPLED = ("reinforce", "dreamer_v2")
INLINE = RunContext(backend=BACKENDS.config("inline"))


class TimeUp(Exception):
    """Raised from an agent's callback once its wall time is spent."""


def one_shot(space_name: str, method: str, seed: int, epochs: int | None, retrainer) -> tuple[Evaluation, float]:
    """The derived cell, trained stand-alone (the env's evaluator is the retrain recipe),
    and the search's own seconds (its epochs, without that training)."""
    space = make_space(space_name)
    agent = make_agent(method, NASEnv(space, retrainer), seed=seed, **({"epochs": epochs} if epochs else {}))
    agent.learn(Budget(evaluations=1))
    return agent.env.evaluations[-1], sum(r["seconds"] for r in agent.history)


def sampled(space_name: str, method: str, seed: int, seconds: float) -> tuple[SearchMonitor, float]:
    """What the search scored on the supernet within ``seconds``, and the seconds it took."""
    space = make_space(space_name)
    evaluator = SupernetEvaluator(space, seed=seed, run=INLINE)
    agent = make_agent(method, NASEnv(space, evaluator), seed=seed)
    start = time.perf_counter()

    def stop_when_spent(_agent) -> None:
        if time.perf_counter() - start > seconds:
            raise TimeUp

    with contextlib.suppress(TimeUp):
        agent.learn(Budget(evaluations=min(space.size, 10**6)), callback=stop_when_spent)
    elapsed = time.perf_counter() - start
    evaluator.close()
    return agent.env, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", nargs="*", default=["nb201", "nasnet"], choices=["nb201", "nasnet"])
    parser.add_argument("--methods", nargs="*", default=[*ONE_SHOT, *SAMPLED], choices=[*ONE_SHOT, *SAMPLED])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="one-shot epochs (default: the agents' nas preset)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    for space_name in args.spaces:
        space = make_space(space_name)
        top_k, retrain = retrainer(SupernetEvaluator(space, run=INLINE), INLINE)
        print(f"\n{space_name} on digits, {args.seeds} seeds; stand-alone retrain: "
              f"{SupernetEvaluator(space).config.retrain}\n")
        print("| method | test acc. of the cell (%) | search s | cells scored | parameter-free ops |")
        print("|---|---:|---:|---:|---:|")
        one_shot_seconds = []
        for method in args.methods:
            rows = []
            for seed in range(args.seeds):
                if method in ONE_SHOT:
                    evaluation, seconds = one_shot(space_name, method, seed, args.epochs, retrain)
                    arch, test_acc, scored = evaluation.arch, evaluation.metrics["test_acc"], 1
                    one_shot_seconds.append(seconds)
                else:
                    budget = float(np.mean(one_shot_seconds)) if one_shot_seconds else 60.0
                    monitor, seconds = sampled(space_name, method, seed, budget)
                    # train.py's headline: of the top_k retrained, the best stand-alone validation accuracy
                    chosen = max(retrain_best(monitor.evaluations, top_k, retrain), key=lambda r: r["val_acc"])
                    arch, test_acc, scored = chosen["arch"], chosen["test_acc"], len(monitor.evaluations)
                rows.append((test_acc, seconds, scored, parameter_free_fraction(space, space.from_string(arch))))
            acc, sec, scored, free = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
            print(f"| {method} | {100 * acc.mean():.2f} ± {100 * acc.std():.2f} | {sec.mean():.0f} | "
                  f"{scored.mean():.0f} | {free.mean():.0%} |", flush=True)


if __name__ == "__main__":
    main()
