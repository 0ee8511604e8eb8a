"""Hyperparameter search quality: our agents on examples/digits_svc.json against Optuna's
TPESampler run through Optuna itself, on the same objective.

    python benchmarks/hpo_search.py [--agents random evolution ppo dreamer_v2 tpe]
        [--trials 60] [--seeds 10] [--jobs 2]

The objective is the SVC example's ``validation_score`` (examples/digits_svc.py), called in
the benchmark's process: the trial API's subprocess start (about 2 s a trial here) would
measure process start-up, not search. Our agents search rlnas/HPO-v0's grid (16 levels per
range, repeats free, so a "trial" is a distinct point); Optuna searches the continuous space
it describes. Per method it prints the best validation accuracy after 20, 40 and 60 trials
(mean ± std over seeds), the test accuracy of the run's best-by-validation point, and the
wall time of a run.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
import torch

from rlnas.agents import make_agent
from rlnas.envs import NASEnv
from rlnas.envs.monitor import Budget
from rlnas.evaluators import CallableEvaluator
from rlnas.spaces.hpo import HPOSpace, load_search_space

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "examples" / "digits_svc.json"


@cache
def load_example():
    spec = importlib.util.spec_from_file_location("digits_svc", ROOT / "examples" / "digits_svc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.validation_score


def suggest(trial, spec: dict, prefix: str = "") -> dict:
    """An Optuna define-by-run suggestion of an NNI-format space (the types this space uses)."""
    params = {}
    for key, entry in spec.items():
        if key == "_name":
            continue
        kind, value, name = entry["_type"], entry["_value"], f"{prefix}{key}"
        if kind == "choice":
            labels = [o["_name"] if isinstance(o, dict) else o for o in value]
            chosen = value[labels.index(trial.suggest_categorical(name, labels))]
            params[key] = ({"_name": chosen["_name"], **suggest(trial, chosen, f"{name}.{chosen['_name']}.")}
                           if isinstance(chosen, dict) else chosen)
        elif kind == "randint":
            params[key] = trial.suggest_int(name, value[0], value[1] - 1)
        elif kind in ("uniform", "loguniform"):
            params[key] = trial.suggest_float(name, value[0], value[1], log=kind == "loguniform")
        else:
            raise NotImplementedError(f"{name}: _type {kind} is not translated to Optuna here")
    return params


def one_run(task: tuple[str, int, int]) -> dict:
    """Validation and test accuracy of every distinct trial, in order, and the wall time."""
    method, seed, trials = task
    torch.set_num_threads(1)
    score = load_example()
    start = time.perf_counter()
    if method == "optuna-tpe":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        spec, results = load_search_space(SPACE), []

        def objective(trial) -> float:
            results.append(score(suggest(trial, spec)))
            return results[-1]["default"]

        optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)).optimize(
            objective, n_trials=trials)
        val, test = [r["default"] for r in results], [r["test_acc"] for r in results]
    else:
        space = HPOSpace(SPACE)
        agent = make_agent(method, NASEnv(space, CallableEvaluator(space, score, label="digits_svc")), seed=seed)
        agent.learn(Budget(evaluations=trials, patience=5000))
        val = [e.score for e in agent.env.evaluations]
        test = [e.metrics.get("test_acc", np.nan) for e in agent.env.evaluations]
    return {"method": method, "val": val, "test": test, "seconds": time.perf_counter() - start}


def every_point(space: HPOSpace, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    if len(prefix) == space.num_decisions:
        return [prefix]
    return [point for choice in space.legal_choices(prefix) for point in every_point(space, (*prefix, choice))]


def grid_score(params: dict) -> float:
    return load_example()(params)["default"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", nargs="*", default=["random", "evolution", "ppo", "dreamer_v2", "tpe"])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    methods = [*args.agents, "optuna-tpe"]
    tasks = [(method, seed, args.trials) for method in methods for seed in range(args.seeds)]
    space = HPOSpace(SPACE)
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(one_run, tasks))
        grid = list(pool.map(grid_score, [space.to_parameters(d) for d in every_point(space)], chunksize=64))
    checkpoints = [n for n in (20, 40, 60) if n <= args.trials]
    print(f"digits SVC (examples/digits_svc.json): {args.seeds} seeds, {args.trials} trials; the grid's "
          f"{space.size} points score at most {100 * max(grid):.2f} % (validation)\n")
    print("| method | " + " | ".join(f"best val @{n}" for n in checkpoints) + " | test of best @"
          f"{args.trials} | s / run |")
    print("|---|" + "---:|" * (len(checkpoints) + 2))
    for method in methods:
        mine = [r for r in runs if r["method"] == method]
        cells = []
        for n in checkpoints:
            best = np.array([max(r["val"][:n]) for r in mine]) * 100
            cells.append(f"{best.mean():.2f} ± {best.std():.2f}")
        test = np.array([r["test"][int(np.argmax(r["val"]))] for r in mine]) * 100
        seconds = np.mean([r["seconds"] for r in mine])
        print(f"| {method} | " + " | ".join(cells) + f" | {test.mean():.2f} ± {test.std():.2f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
