"""Search under a parameter budget on NAS-Bench-201 tables: how often an agent with
``reward=constrained`` finds a cell within 1 point of the most accurate cell within the target.

Each (table, agent, seed) is the search ``python train.py agent=NAME reward=constrained
reward.target.params=TARGET budget.evaluations=BUDGET seed=SEED`` makes, built and driven
in memory. Per (table, agent) it prints the fraction of
runs whose best cell within the target has a validation accuracy at most ``--tolerance``
points below the table's best within it (95 % Wilson interval), that best cell's mean
validation accuracy, and seconds per run.

    python benchmarks/nb201_constrained.py [--table PATH ...] [--agents NAME ...]
        [--target 5e5] [--budget 100] [--seeds 20] [--tolerance 1.0] [--jobs 2]
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from nb201_search import load_table, search_overrides, wilson

from rlnas.cli.train import compose
from rlnas.networks.costs import nb201_costs
from rlnas.search.build import build
from rlnas.search.runner import drive


def one_run(task: tuple[str | None, str, float, int, int]) -> dict:
    path, name, target, budget, seed = task
    search = build(compose([*search_overrides(path, name, seed, []), "reward=constrained",
                            f"reward.target.params={target}", f"budget.evaluations={budget}"]))
    drive(search)
    within = [e.score for e in search.monitor.evaluations if e.metrics["params"] <= target]
    return {"best_within": max(within, default=0.0), "seconds": search.monitor.wall_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", action="append", default=None,
                        help="NB201 table (CSV, optionally .gz); repeat for several (default: bundled CIFAR-10)")
    parser.add_argument("--agents", nargs="*", default=["random", "evolution", "dreamer_v2"])
    parser.add_argument("--target", type=float, default=5e5, help="parameters")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--tolerance", type=float, default=1.0, help="points of validation accuracy")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    tables = args.table or [None]
    tasks = [(path, name, args.target, args.budget, seed) for path in tables for name in args.agents
             for seed in range(args.seeds)]
    costs = nb201_costs()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = iter(pool.map(one_run, tasks))
        for path in tables:
            table = load_table(path)
            best = max(table.evaluate(a).score for a, (params, _) in costs.items() if params <= args.target)
            label = Path(path).name.split(".")[0] if path else "nb201_cifar10_12ep (bundled)"
            print(f"\n{label}: most accurate cell within {args.target:g} parameters: val {100 * best:.2f} %; "
                  f"{args.seeds} seeds, {args.budget} distinct evaluations\n")
            print(f"| agent | within {args.tolerance:g} point of it (95 % interval) | "
                  "val acc. of best within target (%) | s / run |")
            print("|---|---:|---:|---:|")
            for name in args.agents:
                runs = [next(results) for _ in range(args.seeds)]
                vals = 100 * np.array([r["best_within"] for r in runs])
                hits = int(np.sum(vals >= 100 * best - args.tolerance - 1e-9))
                low, high = wilson(hits, len(runs))
                seconds = np.mean([r["seconds"] for r in runs])
                print(f"| {name} | {hits / len(runs):.0%} ({low:.0%}-{high:.0%}) | "
                      f"{vals.mean():.2f} ± {vals.std():.2f} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
