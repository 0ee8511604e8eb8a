"""Hyperparameter search measured as the NeurIPS 2020 black-box optimisation challenge
measured it: Bayesmark's own problems (scikit-learn models on its data sets, its search
spaces, its 5-fold cross-validated losses) for rlnas's agents and for the peers through their
own packages. Run in the environment ``bash benchmarks/bayesmark/setup.sh`` makes:

    benchmarks/bayesmark/.venv/bin/python benchmarks/bayesmark/search.py \\
        --problems DT-wine-nll kNN-boston-mse ... --methods random optuna-tpe smac rlnas:planner \\
        --evaluations 64 --seeds 20 --json results.json [--jobs 2]

A problem is ``MODEL-DATASET-METRIC`` as Bayesmark names it; a method is ``random``
(Bayesmark's own random search, the baseline its score is measured against), ``optuna-tpe``,
``optuna-gp``, ``smac`` (SMAC3's hyperparameter facade, in ``.venv-smac``: it needs a newer
scikit-learn, so it runs as a process of its own and asks this one to evaluate), ``hebo``, or
``rlnas:AGENT`` for any of ours (its ``nas`` preset, as train.py runs it). Every method sees
the same ranges: Bayesmark's log ranges are log ranges everywhere, its logit ranges (which no
peer has) are uniform, its integers integers, its booleans choices.

Each run's every loss is kept in the JSON as it finishes, so a killed benchmark resumes where
it stopped. The tables: per problem and method the median best loss after 16, 32 and 64
evaluations; across problems Bayesmark's normalised score, computed by the package itself
(``experiment_baseline.compute_baseline`` and ``experiment_analysis.compute_aggregates``:
100 is the best loss any method found, 0 is random search), and each method's mean rank.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore", module="sklearn")  # load_boston's deprecation, on every import
HERE = Path(__file__).resolve().parent
CHECKPOINTS = (16, 32, 64)
PEERS = ("random", "optuna-tpe", "optuna-gp", "smac", "hebo")
PROBLEMS = ("DT-wine-nll", "kNN-iris-nll", "SVM-wine-nll", "lasso-wine-nll", "linear-breast-nll", "RF-iris-acc",
            "MLP-sgd-wine-nll", "DT-diabetes-mae", "kNN-boston-mse", "lasso-diabetes-mse", "SVM-diabetes-mse",
            "RF-boston-mse")


# -- problems -------------------------------------------------------------------------------
def problem(name: str):
    """Bayesmark's ``SklearnModel`` for ``MODEL-DATASET-METRIC`` (model names may hold a dash)."""
    from bayesmark.sklearn_funcs import SklearnModel

    *model, dataset, metric = name.split("-")
    return SklearnModel("-".join(model), dataset, metric, shuffle_seed=0)


def loss(model, params: dict[str, Any]) -> float:
    """The cross-validated loss Bayesmark scores (inf where scikit-learn refuses the point)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(model.evaluate(params)[0])
        except Exception:  # a point the model cannot fit is a failed evaluation
            return math.inf
    return value if math.isfinite(value) else math.inf


def typed(params: dict[str, Any], api: dict[str, dict]) -> dict[str, Any]:
    """Parameters as the model takes them: Bayesmark's integers as int, booleans as bool."""
    kinds = {"int": int, "bool": bool}
    return {k: kinds.get(api[k]["type"], lambda v: v)(v) for k, v in params.items()}


def nni_space(api: dict[str, dict]) -> dict[str, dict]:
    """A Bayesmark space in NNI's format, which rlnas reads."""
    space = {}
    for key, p in api.items():
        if p["type"] in ("bool", "cat"):
            space[key] = {"_type": "choice", "_value": [False, True] if p["type"] == "bool" else list(p["values"])}
        elif p["type"] == "int":
            lo, hi = p["range"]
            space[key] = ({"_type": "qloguniform", "_value": [lo, hi, 1]} if p["space"] == "log"
                          else {"_type": "randint", "_value": [lo, hi + 1]})
        else:
            space[key] = {"_type": "loguniform" if p["space"] == "log" else "uniform", "_value": list(p["range"])}
    return space


# -- methods: each returns the losses of its evaluations, in order ----------------------------
def run_random(model, api, evaluations: int, seed: int) -> list[float]:
    from bayesmark.random_search import suggest_dict

    rng = np.random.RandomState(seed)
    return [loss(model, suggest_dict([], [], api, n_suggestions=1, random=rng)[0]) for _ in range(evaluations)]


def run_optuna(model, api, evaluations: int, seed: int, sampler: str) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPSampler is "experimental" and says so
        made = (optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else optuna.samplers.GPSampler(seed=seed))
    study = optuna.create_study(direction="minimize", sampler=made)
    losses = []
    for _ in range(evaluations):
        trial = study.ask()
        params = {}
        for key, p in api.items():
            if p["type"] in ("bool", "cat"):
                params[key] = trial.suggest_categorical(key, [False, True] if p["type"] == "bool" else p["values"])
            elif p["type"] == "int":
                params[key] = trial.suggest_int(key, *p["range"], log=p["space"] == "log")
            else:
                params[key] = trial.suggest_float(key, *p["range"], log=p["space"] == "log")
        losses.append(loss(model, params))
        if math.isfinite(losses[-1]):
            study.tell(trial, losses[-1])
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return losses


def fast_duplicates() -> None:
    """Make HEBO's candidate search mark duplicates by hashing instead of pymoo 0.6.0's pairwise
    Python loop (``ElementwiseDuplicateElimination._do``: millions of dict comparisons a run, most
    of HEBO's time here). It marks the same individuals, so HEBO suggests the same points: a point
    is a duplicate where an equal one comes later in its population or anywhere in ``other``."""
    from pymoo.core.mixed import MixedVariableDuplicateElimination

    def key(ind) -> tuple:
        return tuple(sorted(ind.X.items()))

    def marks(self, pop, other, is_duplicate):
        seen = set() if other is None else set(map(key, other))
        for i in reversed(range(len(pop))):
            k = key(pop[i])
            is_duplicate[i] |= k in seen
            if other is None:
                seen.add(k)
        return is_duplicate

    MixedVariableDuplicateElimination._do = marks


def run_hebo(model, api, evaluations: int, seed: int) -> list[float]:
    import torch
    from hebo.design_space.design_space import DesignSpace
    from hebo.optimizers.hebo import HEBO

    fast_duplicates()
    torch.manual_seed(seed)
    entries = []
    for key, p in api.items():
        if p["type"] in ("bool", "cat"):
            entries.append({"name": key, "type": "cat", "categories": [False, True] if p["type"] == "bool"
                            else p["values"]})
        elif p["type"] == "int":
            entries.append({"name": key, "type": "pow_int" if p["space"] == "log" else "int",
                            "lb": p["range"][0], "ub": p["range"][1]})
        else:
            entries.append({"name": key, "type": "pow" if p["space"] == "log" else "num",
                            "lb": p["range"][0], "ub": p["range"][1]})
    optimiser = HEBO(DesignSpace().parse(entries), scramble_seed=seed)
    losses = []
    for _ in range(evaluations):
        suggestion = optimiser.suggest(1)
        params = {k: v.item() if hasattr(v, "item") else v for k, v in suggestion.iloc[0].to_dict().items()}
        losses.append(loss(model, typed(params, api)))
        finite = losses[-1] if math.isfinite(losses[-1]) else max([y for y in losses if math.isfinite(y)], default=1e9)
        optimiser.observe(suggestion, np.array([[finite]]))  # HEBO takes no failures: the worst loss so far
    return losses


def run_smac(model, api, evaluations: int, seed: int) -> list[float]:
    """SMAC3 in its own interpreter (.venv-smac), asking this process to evaluate, line by line.
    Where SMAC has tried every configuration it can find, its best stands for the evaluations
    left (kept as failures: none of them improves on it)."""
    python = HERE / ".venv-smac" / "bin" / "python"
    worker = subprocess.Popen([str(python), str(HERE / "smac_worker.py")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1)
    worker.stdin.write(json.dumps({"api": api, "evaluations": evaluations, "seed": seed}) + "\n")
    losses = []
    for line in worker.stdout:
        message = json.loads(line)
        if "done" in message:
            break
        losses.append(loss(model, typed(message["params"], api)))
        worker.stdin.write(json.dumps({"loss": losses[-1] if math.isfinite(losses[-1]) else None}) + "\n")
    worker.wait()
    if worker.returncode:
        raise RuntimeError(f"smac worker stopped after {len(losses)} evaluations (exit code {worker.returncode})")
    return losses + [math.inf] * (evaluations - len(losses))


def run_rlnas(model, api, evaluations: int, seed: int, agent: str) -> list[float]:
    from rlnas.agents import make_agent
    from rlnas.envs import NASEnv
    from rlnas.envs.monitor import Budget
    from rlnas.evaluators import CallableEvaluator
    from rlnas.spaces.hpo import HPOSpace

    space = HPOSpace(nni_space(api))
    objective = CallableEvaluator(space, lambda params: loss(model, typed(params, api)), label="bayesmark",
                                  optimize_mode="minimize")
    searcher = make_agent(agent, NASEnv(space, objective), seed=seed).learn(Budget(evaluations=evaluations))
    return [e.metrics.get("value", math.inf) for e in searcher.env.evaluations][:evaluations]


def run_one(problem_name: str, method: str, evaluations: int, seed: int) -> dict[str, Any]:
    """One search; its every loss in order (failures as null) and its wall time."""
    import torch

    torch.set_num_threads(1)  # one search per core: --jobs sets the parallelism
    model = problem(problem_name)
    api = model.get_api_config()
    # Bayesmark builds its DT, RF, MLP and lasso models without a random_state, so they draw on
    # numpy's global generator: seeded here, the same seed gives the same losses for every method
    np.random.seed(seed)
    start = time.perf_counter()
    if method == "random":
        losses = run_random(model, api, evaluations, seed)
    elif method in ("optuna-tpe", "optuna-gp"):
        losses = run_optuna(model, api, evaluations, seed, method.split("-")[1])
    elif method == "smac":
        losses = run_smac(model, api, evaluations, seed)
    elif method == "hebo":
        losses = run_hebo(model, api, evaluations, seed)
    else:
        losses = run_rlnas(model, api, evaluations, seed, method.split(":", 1)[1])
    kept = [y if math.isfinite(y) else None for y in losses]
    return {"problem": problem_name, "method": method, "seed": seed,
            "wall_seconds": round(time.perf_counter() - start, 2), "losses": kept,
            "best_so_far": [y if math.isfinite(y) else None for y in best_so_far(kept).tolist()]}


# -- scoring ----------------------------------------------------------------------------------
def best_so_far(losses: list[float | None]) -> np.ndarray:
    return np.minimum.accumulate([math.inf if y is None else y for y in losses])


def summarise(runs: list[dict], problems: list[str], methods: list[str], evaluations: int) -> dict[str, Any]:
    """Bayesmark's normalised score (its own code, on these runs) and each method's mean rank."""
    import xarray as xr
    from bayesmark import constants as cc
    from bayesmark.experiment_analysis import compute_aggregates
    from bayesmark.experiment_baseline import compute_baseline

    seeds = sorted({r["seed"] for r in runs})
    names = {m: f"{cc.RANDOM_SEARCH}_{m}" if m == "random" else m for m in methods}  # the baseline, as it knows it
    curves = np.full((evaluations, 1, len(problems), len(methods), len(seeds)), np.nan)
    for r in runs:
        curve = np.array([math.inf if y is None else y for y in r["losses"]])
        curves[:, 0, problems.index(r["problem"]), methods.index(r["method"]), seeds.index(r["seed"])] = curve
    if np.isnan(curves).any():
        raise ValueError("some (problem, method, seed) runs are missing: run the benchmark to the end first")
    worst = np.nanmax(np.where(np.isfinite(curves), curves, np.nan), axis=(0, 1, 3, 4), keepdims=True)
    curves = np.where(np.isfinite(curves), curves, worst)  # a failure counts as the worst loss seen on its problem
    perf = xr.DataArray(curves, dims=(cc.ITER, cc.SUGGEST, cc.TEST_CASE, cc.METHOD, cc.TRIAL),
                        coords={cc.ITER: np.arange(evaluations), cc.SUGGEST: [0], cc.TEST_CASE: problems,
                                cc.METHOD: [names[m] for m in methods], cc.TRIAL: np.arange(len(seeds))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, summary = compute_aggregates(perf, compute_baseline(perf))
    normed = summary[cc.NORMED_MEAN]  # (ITER, METHOD): mean normalised loss over problems / random search's
    best = np.minimum.accumulate(curves[:, 0], axis=0)  # (ITER, problem, method, seed)
    out = {"normalised_score": {}, "mean_rank": {}}
    for n in CHECKPOINTS:
        if n > evaluations:
            continue
        median = np.median(best[n - 1], axis=-1)  # (problem, method)
        ranks = np.argsort(np.argsort(median, axis=1), axis=1) + 1.0
        for p in range(len(problems)):  # ties share their mean rank
            for value in np.unique(median[p]):
                tied = median[p] == value
                ranks[p, tied] = ranks[p, tied].mean()
        out["normalised_score"][str(n)] = {m: round(100 * (1 - float(normed.sel({cc.METHOD: names[m]})[n - 1])), 2)
                                           for m in methods}
        out["mean_rank"][str(n)] = {m: round(float(ranks[:, i].mean()), 2) for i, m in enumerate(methods)}
    return out


def tables(runs: list[dict], problems: list[str], methods: list[str], evaluations: int) -> str:
    marks = [n for n in CHECKPOINTS if n <= evaluations]
    lines = [f"{'problem':22s} {'method':20s} " + " ".join(f"{'@' + str(n):>12s}" for n in marks) + f" {'s/run':>7s}"]
    for p in problems:
        for m in methods:
            mine = [r for r in runs if r["problem"] == p and r["method"] == m]
            if not mine:
                continue
            best = np.array([best_so_far(r["losses"]) for r in mine])
            cells = " ".join(f"{np.median(best[:, n - 1]):12.5g}" for n in marks)
            lines.append(f"{p:22s} {m:20s} {cells} {np.mean([r['wall_seconds'] for r in mine]):7.1f}")
    return "\n".join(lines)


def keep(path: Path, results: dict[str, Any]) -> None:
    """Write the results whole or not at all: a benchmark killed mid-write keeps its last file."""
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(results))
    part.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", default=[*PEERS, "rlnas:planner"])
    parser.add_argument("--evaluations", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--seed-start", type=int, default=0, help="the first seed (a fresh block: tune on one, "
                                                                   "report another)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, required=True, help="results: kept as runs finish, resumed from")
    args = parser.parse_args()
    for m in args.methods:
        if m not in PEERS and not m.startswith("rlnas:"):
            parser.error(f"unknown method {m!r}; allowed: {', '.join(PEERS)}, rlnas:AGENT")
    if "hebo" in args.methods:
        try:
            import hebo  # noqa: F401
        except ImportError:
            print("hebo is not installed here (benchmarks/bayesmark/setup.sh says why): left out", file=sys.stderr)
            args.methods.remove("hebo")
    for p in args.problems:
        problem(p)  # a bad name fails here, naming what Bayesmark allows, before any search

    saved = json.loads(args.json.read_text()) if args.json.is_file() else {"runs": []}
    done = {(r["problem"], r["method"], r["seed"]) for r in saved["runs"] if len(r["losses"]) == args.evaluations}
    runs = [r for r in saved["runs"] if (r["problem"], r["method"], r["seed"]) in done]
    seeds = range(args.seed_start, args.seed_start + args.seeds)
    # seed by seed: a benchmark stopped early holds whole seeds of every problem and method
    todo = [(p, m, s) for s in seeds for p in args.problems for m in args.methods if (p, m, s) not in done]
    print(f"{len(todo)} searches to run ({len(runs)} kept from {args.json})", file=sys.stderr)
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_one, p, m, args.evaluations, s): (p, m, s) for p, m, s in todo}
        for i, future in enumerate(as_completed(futures), 1):
            if future.exception() is not None:  # left out, and run again by the next resume
                print(f"  {i}/{len(todo)} {futures[future]} failed: {future.exception()!r}", file=sys.stderr)
                continue
            runs.append(future.result())
            keep(args.json, {"runs": runs})
            print(f"  {i}/{len(todo)} {runs[-1]['problem']} {runs[-1]['method']} seed {runs[-1]['seed']}: "
                  f"{runs[-1]['wall_seconds']} s", file=sys.stderr)
    wanted = [r for r in runs if r["problem"] in args.problems and r["method"] in args.methods and r["seed"] in seeds]
    summary = summarise(wanted, args.problems, args.methods, args.evaluations)
    keep(args.json, {"runs": runs, "summary": summary, "problems": args.problems, "methods": args.methods,
                     "evaluations": args.evaluations, "seeds": [seeds.start, seeds.stop - 1]})
    print(f"median best validation loss ({args.seeds} seeds)")
    print(tables(wanted, args.problems, args.methods, args.evaluations))
    print(f"\nacross {len(args.problems)} problems   " + "   ".join(f"{'@' + k:>20s}" for k in summary["mean_rank"]))
    for m in args.methods:
        cells = "   ".join(f"score {summary['normalised_score'][k][m]:6.2f} rank {summary['mean_rank'][k][m]:4.2f}"
                           for k in summary["mean_rank"])
        print(f"{m:30s} {cells}")


if __name__ == "__main__":
    main()
