"""Search quality on the NAS-Bench-201 CIFAR-10 table: every registered agent, equal
evaluation budgets, many seeds.

For each (agent, budget, seed) the agent searches until it has paid for ``budget``
distinct architectures; the run's result is the architecture with the best validation
accuracy among them. Printed per (agent, budget): the mean +- std test accuracy of that
architecture, the mean validation regret (table's best validation accuracy minus the
run's), and the fraction of runs that evaluated the table's best cell at all.

    python benchmarks/nb201_search.py [--seeds 20] [--budgets 50 100 150] [--agents random evolution] [--jobs 2]

``--jobs`` runs seeds side by side, one process (and one torch thread) each; every run
depends on its seed alone, so the table is the same for any ``--jobs``.

Agents run with the hyperparameters of conf/agent/<name>.yaml (those train.py uses).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
import torch
import yaml

from rlnas.agents import available_agents, make_agent
from rlnas.config import CONF, agent_config
from rlnas.envs import NASEnv
from rlnas.evaluators import TabularEvaluator
from rlnas.monitor import Budget

PATIENCE = yaml.safe_load((CONF / "config.yaml").read_text())["budget"]["patience"]


def one_run(name: str, budget: int, seed: int, table: TabularEvaluator) -> dict:
    torch.set_num_threads(1)
    agent = make_agent(name, NASEnv("nb201", table), seed=seed, **agent_config(name))
    start = time.perf_counter()
    agent.learn(Budget(evaluations=budget, patience=PATIENCE))
    seconds = time.perf_counter() - start
    evaluations = agent.env.evaluations
    best = max(evaluations, key=lambda e: e.score)
    return {"test": best.metrics["test_acc"], "val": best.score, "evaluations": len(evaluations),
            "found": any(e.arch == table.best_arch for e in evaluations), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="*", default=None, help="default: every registered agent")
    parser.add_argument("--budgets", nargs="*", type=int, default=[50, 100, 150])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1, help="processes running seeds side by side")
    args = parser.parse_args()

    table = TabularEvaluator()
    best_val = table.evaluate(table.best_arch).score
    names = args.agents or list(available_agents())
    print(f"NB201 CIFAR-10 (12-epoch table): best cell val {100 * best_val:.2f} %, test "
          f"{100 * table.evaluate(table.best_arch).metrics['test_acc']:.2f} %; {args.seeds} seeds per row\n")
    print("| agent | evaluations | test acc. of best-by-val (%) | val regret (%) | found best cell | "
          "s / run |")
    print("|---|---:|---:|---:|---:|---:|")
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = {(name, budget): pool.map(partial(one_run, name, budget, table=table), range(args.seeds))
                for name in names for budget in args.budgets}
        for (name, budget), results in rows.items():
            runs = list(results)
            test = 100 * np.array([r["test"] for r in runs])
            regret = 100 * (best_val - np.array([r["val"] for r in runs]))
            spent = {r["evaluations"] for r in runs}
            note = "" if spent == {budget} else f" (spent {min(spent)}-{max(spent)})"
            print(f"| {name} | {budget}{note} | {test.mean():.2f} ± {test.std():.2f} | {regret.mean():.2f} | "
                  f"{np.mean([r['found'] for r in runs]):.0%} | {np.mean([r['seconds'] for r in runs]):.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
