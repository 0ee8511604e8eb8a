"""Search quality on NAS-Bench-201 tables: every registered agent, equal budgets of
distinct evaluations, many seeds.

Each (table, agent, seed) searches until it has paid for the largest budget; the row at a
smaller budget N reads the run's first N distinct evaluations. That is the same as a run
stopped at N, because no agent reads ``budget.evaluations`` (they see only the env), and it
gives the anytime curve for free. Per (table, agent, budget) it prints:

* found best cell: the fraction of runs that evaluated a cell with the table's best
  validation accuracy, with its 95 % Wilson interval;
* test accuracy of the run's best-by-validation cell (mean ± std over seeds);
* validation regret: the table's best validation accuracy minus the run's.

and it draws validation regret against distinct evaluations (mean and 95 % band over seeds,
one line per agent, one panel per table) into ``--plot``. ``--save`` writes every run's
evaluations to JSON, and ``--plot-with`` draws saved runs beside this invocation's: the
slow agents run on their own and join one plot (``--agents`` with no name only plots).

    python benchmarks/nb201_search.py [--table PATH ...] [--agents NAME ...] [--seeds 40]
        [--first-seed 0] [--budgets 50 100 150] [--parallel 1 4 8] [--jobs 2] [--plot docs/nb201_anytime.png]
        [--set KEY=VALUE ...] [--save runs.json] [--plot-with other_runs.json ...]

Every run is the search ``train.py agent=NAME seed=S evaluator.table=PATH`` makes, built
and driven in memory by the same code (rlnas.search.build and runner.drive), with the
agent's ``nas`` preset: one configuration per agent for every table; ``--set KEY=VALUE``
overrides one of its settings to measure another. ``--parallel N`` is ``parallel=N
backend=inline``: N equal workers simulated in the run's process, every proposal made with
N - 1 results still out, which is what proposing ahead costs, measured without N cores.

``--table`` repeats (default: the bundled CIFAR-10 table). ``--jobs`` runs seeds side by
side, one process and one torch thread each; every run depends on its seed alone, so the
numbers are the same for any ``--jobs``.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from rlnas.agents import available_agents
from rlnas.cli.train import compose
from rlnas.evaluators import TabularEvaluator
from rlnas.search.build import build
from rlnas.search.runner import drive

Z95 = 1.959964


def load_table(path: str | None) -> TabularEvaluator:
    return TabularEvaluator(path)


def search_overrides(path: str | None, name: str, seed: int, sets: list[str], parallel: int = 1) -> list[str]:
    """train.py's overrides for one run of agent ``name`` on the table at ``path``, in memory."""
    return [f"agent={name}", f"seed={seed}", *(f"agent.{kv}" for kv in sets), f"parallel={parallel}",
            "backend=inline", "pareto.cost=null", "quiet=true", *([f"evaluator.table={path}"] if path else [])]


def one_run(task: tuple[str | None, str, int, int, list[str], int]) -> dict:
    """Validation and test accuracy of every distinct evaluation, in the order paid for."""
    path, name, budget, seed, sets, parallel = task
    search = build(compose([*search_overrides(path, name, seed, sets, parallel), f"budget.evaluations={budget}"]))
    drive(search)
    evaluations = search.monitor.evaluations
    return {"val": [e.score for e in evaluations], "test": [e.metrics["test_acc"] for e in evaluations],
            "seconds": search.monitor.wall_seconds}


def wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion k / n."""
    p, z2 = k / n, Z95**2
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n**2)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(runs: list[dict], budget: int, best_val: float) -> dict:
    """The row of one (table, agent) at ``budget`` distinct evaluations."""
    best_val_seen, test_of_best, spent = [], [], []
    for run in runs:
        val, test = np.array(run["val"][:budget]), np.array(run["test"][:budget])
        i = int(np.argmax(val))
        best_val_seen.append(val[i])
        test_of_best.append(test[i])
        spent.append(len(val))
    best_val_seen, test_of_best = np.array(best_val_seen), 100 * np.array(test_of_best)
    found = int(np.sum(best_val_seen >= best_val))
    return {"found": found, "n": len(runs), "interval": wilson(found, len(runs)),
            "test": (test_of_best.mean(), test_of_best.std()),
            "regret": 100 * (best_val - best_val_seen).mean(), "spent": (min(spent), max(spent))}


def regret_curve(runs: list[dict], budget: int, best_val: float) -> np.ndarray:
    """Validation regret (%) after 1..budget distinct evaluations, one row per run; a run that
    stopped early keeps its last value."""
    curves = np.empty((len(runs), budget))
    for r, run in enumerate(runs):
        best = np.maximum.accumulate(np.array(run["val"][:budget]))
        curves[r, :len(best)], curves[r, len(best):] = best, best[-1]
    return 100 * (best_val - curves)


def plot(curves: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.5), squeeze=False)
    for ax, (label, per_agent) in zip(axes[0], curves.items(), strict=True):
        for i, (name, regret) in enumerate(per_agent.items()):  # ten colours, then dashed lines
            x = np.arange(1, regret.shape[1] + 1)
            mean, sem = regret.mean(0), regret.std(0, ddof=1) / np.sqrt(len(regret)) if len(regret) > 1 else 0
            (line,) = ax.plot(x, mean, label=f"{name} ({len(regret)} seeds)", lw=1.5, color=f"C{i % 10}",
                              ls="--" if i // 10 % 2 else "-")
            ax.fill_between(x, np.maximum(mean - Z95 * sem, 0), mean + Z95 * sem, color=line.get_color(), alpha=0.2)
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_xlabel("distinct evaluations")
        ax.set_ylabel("validation regret (%)")
        ax.set_title(f"{label}: mean and 95 % band over seeds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\nplot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="append", default=None,
                        help="NB201 table (CSV, optionally .gz); repeat for several (default: bundled CIFAR-10)")
    parser.add_argument("--agents", nargs="*", default=None, help="default: every registered agent")
    parser.add_argument("--budgets", nargs="*", type=int, default=[50, 100, 150])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="run seeds first-seed .. first-seed + seeds - 1 (fresh ones check a setting)")
    parser.add_argument("--jobs", type=int, default=1, help="processes running seeds side by side")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of regret against evaluations")
    parser.add_argument("--parallel", nargs="*", type=int, default=[1],
                        help="architectures in flight (simulated equal workers); a row per value")
    parser.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                        help="the agent's settings (agent.KEY); repeats add up")
    parser.add_argument("--save", type=Path, default=None, help="JSON of every run's evaluations")
    parser.add_argument("--plot-with", nargs="*", type=Path, default=[],
                        help="runs saved by --save, drawn beside this invocation's")
    args = parser.parse_args()

    tables = args.table or [None]
    names = list(available_agents()) if args.agents is None else args.agents
    rows = [(name, n) for name in names for n in args.parallel]
    horizon = max(args.budgets)
    tasks = [(path, name, horizon, seed, args.set, n) for path in tables for name, n in rows
             for seed in range(args.first_seed, args.first_seed + args.seeds)]
    saved: dict[str, dict] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        results = iter(pool.map(one_run, tasks))
        curves: dict[str, dict[str, np.ndarray]] = {}
        for path in tables if rows else ():
            table = load_table(path)
            best = table.evaluate(table.best_arch)
            label = Path(path).name.split(".")[0] if path else "nb201_cifar10_12ep (bundled)"
            saved[label] = {"best": best.score, "runs": {}}
            print(f"\n{label}: best cell val {100 * best.score:.2f} %, test {100 * best.metrics['test_acc']:.2f} %; "
                  f"{args.seeds} seeds per row (seeds {args.first_seed}-{args.first_seed + args.seeds - 1})\n")
            print("| agent | evaluations | found best cell (95 % interval) | test acc. of best-by-val (%) | "
                  "val regret (%) | s / run |")
            print("|---|---:|---:|---:|---:|---:|")
            curves[label] = {}
            for agent, n in rows:
                name = agent if args.parallel == [1] else f"{agent} (parallel={n})"
                runs = [next(results) for _ in range(args.seeds)]
                saved[label]["runs"][name] = runs
                seconds = np.mean([r["seconds"] for r in runs])
                for budget in args.budgets:
                    row = summarise(runs, budget, best.score)
                    low, high = row["interval"]
                    note = "" if row["spent"] == (budget, budget) else f" (spent {row['spent'][0]}-{row['spent'][1]})"
                    print(f"| {name} | {budget}{note} | {row['found'] / row['n']:.0%} ({low:.0%}-{high:.0%}) | "
                          f"{row['test'][0]:.2f} ± {row['test'][1]:.2f} | {row['regret']:.2f} | "
                          f"{seconds:.2f} (to {horizon}) |", flush=True)
                curves[label][name] = regret_curve(runs, horizon, best.score)
    if args.save:
        args.save.write_text(json.dumps({"horizon": horizon, "first_seed": args.first_seed, "tables": saved}))
    for other in args.plot_with:
        data = json.loads(other.read_text())
        for label, table in data["tables"].items():
            for name, runs in table["runs"].items():
                curves.setdefault(label, {})[name] = regret_curve(runs, data["horizon"], table["best"])
    if args.plot:
        plot(curves, args.plot)


if __name__ == "__main__":
    main()
