"""Accuracy against parameters on NAS-Bench-201 tables: how much of the true Pareto front a
search finds in 100 distinct evaluations, our agents beside Optuna's NSGA-II and MOTPE.

Each method searches until it has paid for ``--budget`` distinct cells; its front is the
non-dominated set of (validation accuracy, parameters) over everything it evaluated,
whatever reward steered it. Per (table, method) it prints, over seeds:

* hypervolume of the found front as a fraction of the true front's, from the reference
  (accuracy of the true front's cheapest cell, 1.1 x the largest cell's parameters): below
  that accuracy a cell is beaten by the cheapest cell, and from accuracy 0 every front
  would cover nearly all of the area, so nothing would tell searches apart;
* the fraction of the true front's cells the search evaluated.

Methods: ``random``; our agents under ``reward=scalarized`` (its defaults: one
configuration for every table) and Dreamer V2 under ``reward=constrained`` at four
targets (0.25, 0.5, 0.75 and 1 M parameters, a quarter of the budget each, the fronts
joined); Optuna's ``NSGAIISampler`` and its multi-objective ``TPESampler`` (MOTPE), both
asked for the six edges define-by-run, told (accuracy, parameters), repeats told again free.

    python benchmarks/nb201_pareto.py [--table PATH ...] [--methods NAME ...] [--seeds 20]
        [--budget 100] [--jobs 2] [--plot docs/nb201_pareto.png]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from nb201_search import load_table, search_overrides

from rlnas.cli.train import compose
from rlnas.networks.costs import nb201_costs
from rlnas.search.build import build
from rlnas.search.pareto import hypervolume, pareto_front
from rlnas.search.runner import drive
from rlnas.spaces import NB201Space

TARGETS = (2.5e5, 5e5, 7.5e5, 1e6)
METHODS = ("random", "evolution", "ppo", "dreamer_v2", "dreamer_v2-constrained", "nsga2", "motpe")


def agent_points(path: str | None, name: str, seed: int, budget: int, *reward: str) -> list[tuple[float, float]]:
    """The search train.py makes with ``reward`` (its overrides), built and driven in memory."""
    search = build(compose([*search_overrides(path, name, seed, []), f"budget.evaluations={budget}", *reward]))
    drive(search)
    return [(e.score, e.metrics["params"]) for e in search.monitor.evaluations]


def optuna_points(path: str | None, sampler_name: str, seed: int, budget: int) -> list[tuple[float, float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.NSGAIISampler(seed=seed) if sampler_name == "nsga2"
               else optuna.samplers.TPESampler(seed=seed))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    space, table, seen = NB201Space(), load_table(path), {}
    for _ in range(50 * budget):  # a sampler that only repeats itself stops here
        if len(seen) >= budget:
            break
        trial = study.ask()
        arch = space.to_string([trial.suggest_int(f"edge{i}", 0, len(space.ops) - 1) for i in range(6)])
        if arch not in seen:
            result = table.evaluate(arch)
            seen[arch] = (result.score, result.metrics["params"])
        study.tell(trial, list(seen[arch]))
    return list(seen.values())


def one_run(task: tuple[str | None, str, int, int]) -> dict:
    path, method, seed, budget = task
    start = time.perf_counter()
    if method in ("nsga2", "motpe"):
        points = optuna_points(path, method, seed, budget)
    elif method == "dreamer_v2-constrained":
        points = [p for target in TARGETS for p in agent_points(
            path, "dreamer_v2", seed, budget // len(TARGETS), "reward=constrained", f"reward.target.params={target}")]
    elif method == "random":
        points = agent_points(path, method, seed, budget)
    else:
        points = agent_points(path, method, seed, budget, "reward=scalarized")
    return {"points": points, "seconds": time.perf_counter() - start}


def true_front(path: str | None) -> list[tuple[float, float]]:
    table, costs = load_table(path), nb201_costs()
    return pareto_front((table.evaluate(arch).score, costs[arch][0]) for arch in costs)


def plot(fronts: dict[str, tuple[list, dict[str, list]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fronts), figsize=(6.5 * len(fronts), 4.5), squeeze=False)
    for ax, (label, (truth, found)) in zip(axes[0], fronts.items(), strict=True):
        ax.step([c / 1e6 for _, c in truth], [100 * s for s, _ in truth], where="post", c="k", lw=2.5,
                label="true front")
        for name, front in found.items():
            ax.step([c / 1e6 for _, c in front], [100 * s for s, _ in front], where="post", marker="o", ms=3,
                    lw=1, label=name)
        ax.set_xlabel("parameters (M)")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_ylim(100 * truth[0][0] - 5, 100 * truth[-1][0] + 1)
        ax.set_title(f"{label}: fronts found by seed 0")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\nplot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", action="append", default=None,
                        help="NB201 table (CSV, optionally .gz); repeat for several (default: bundled CIFAR-10)")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()

    tables = args.table or [None]
    tasks = [(path, method, seed, args.budget) for path in tables for method in args.methods
             for seed in range(args.seeds)]
    fronts = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        results = iter(pool.map(one_run, tasks))
        for path in tables:
            label = Path(path).name.split(".")[0] if path else "nb201_cifar10_12ep (bundled)"
            truth = true_front(path)
            ref = (truth[0][0], 1.1 * max(params for params, _ in nb201_costs().values()))
            best_hv = hypervolume(truth, ref)
            print(f"\n{label}: true front of {len(truth)} cells, hypervolume {best_hv:.4g} from reference "
                  f"({100 * ref[0]:.2f} %, {ref[1]:.4g} parameters); {args.seeds} seeds, "
                  f"{args.budget} distinct evaluations\n")
            print("| method | hypervolume / true front's | true-front cells found | s / run |")
            print("|---|---:|---:|---:|")
            fronts[label] = (truth, {})
            for method in args.methods:
                runs = [next(results) for _ in range(args.seeds)]
                ratios = np.array([hypervolume(r["points"], ref) / best_hv for r in runs])
                found = np.array([len(set(truth) & set(pareto_front(r["points"]))) / len(truth) for r in runs])
                seconds = np.mean([r["seconds"] for r in runs])
                print(f"| {method} | {ratios.mean():.4f} ± {ratios.std():.4f} | {found.mean():.0%} ± {found.std():.0%} "
                      f"| {seconds:.2f} |", flush=True)
                fronts[label][1][method] = pareto_front(runs[0]["points"])
    if args.plot:
        plot(fronts, args.plot)


if __name__ == "__main__":
    main()
