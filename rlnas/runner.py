"""One search run: build everything from the config, let the agent learn within the budget,
checkpoint, and write the report. ``train.py`` is a thin Hydra shell around :func:`run`.

Run directory::

    config.yaml          resolved config (with the run id), what ``resume=`` reads back
    evaluations.sqlite   every evaluation, committed as it finishes
    checkpoint.pt        agent + counters at the last consistent point (weights_only-safe)
    tb/                  TensorBoard events
    report.json          the result, for scripts
    best_model.pt        the best network the run trained (scratch evaluator, retrain), weights_only-safe
    best_cell.png, .svg  a drawing of the best architecture

Resume: the agent and counters come back from the checkpoint and the paid evaluations
from the store. Whatever the agent replays between the checkpoint and the kill is answered
by the store for free, so nothing is evaluated twice and, with the agent's generators
restored, the run continues exactly as an uninterrupted one would have.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from rlnas import checkpoint as checkpoints
from rlnas.agents import agent_class, make_agent
from rlnas.agents.architecture_agent import proposes
from rlnas.config import (
    build_budget,
    build_evaluator,
    build_pareto,
    build_retrain,
    build_reward,
    build_space,
    pool_settings,
    resolve_device,
    to_dict,
)
from rlnas.drawing import draw_cells, draw_front
from rlnas.envs import NASEnv
from rlnas.evaluators import Evaluator, StoredEvaluator
from rlnas.logger import TensorBoardLogger
from rlnas.monitor import Budget, SearchMonitor, VectorSearchMonitor
from rlnas.parallel import AsyncSearch, EvaluationPool, LockStepEnvs, evaluate_all
from rlnas.pareto import ParetoArchive
from rlnas.ranges import INT_AT_LEAST_1, THREADS, check
from rlnas.rewards import Constrained
from rlnas.store import EvaluationStore

CONFIG, STORE, CHECKPOINT, REPORT, TENSORBOARD, BEST_MODEL, BEST_CELL, PARETO_FRONT = (
    "config.yaml", "evaluations.sqlite", "checkpoint.pt", "report.json", "tb", "best_model.pt", "best_cell",
    "pareto_front.png")


def load_run_config(run_dir: str | Path) -> DictConfig:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume {run_dir}: no {CONFIG} there (is it an rlnas run directory?)")
    return OmegaConf.load(path)


def run(cfg: DictConfig, run_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) the search ``cfg`` describes in ``run_dir``; return the report."""
    run_dir = Path(run_dir)
    if "workdir" in cfg.evaluator and cfg.evaluator.workdir is None:  # trials run in the run directory
        cfg = OmegaConf.merge(cfg, {"evaluator": {"workdir": str(run_dir.resolve() / "trials")}})
    # Build and validate everything first: a bad value fails here, before any work.
    space = build_space(cfg.env)
    evaluator = build_evaluator(cfg.evaluator, space)
    top_k, retrainer = build_retrain(cfg.evaluator, space)
    budget = build_budget(cfg.budget, space)
    pareto, draw_every = build_pareto(cfg.get("pareto"))  # runs saved before fronts have none
    reward = build_reward(cfg.get("reward"))
    if isinstance(reward, Constrained) and cfg.evaluator.get("optimize_mode") == "minimize":
        raise ValueError(Constrained.NEEDS)
    device = resolve_device(cfg.device)
    hparams = {k: v for k, v in to_dict(cfg.agent).items() if k != "name"}
    threads = cfg.get("threads", 1)  # runs saved before the key existed ran on one thread
    parallel = cfg.get("parallel", 1)
    check("config", {"checkpoint_every": cfg.checkpoint_every, "threads": threads, "parallel": parallel}, {
        "checkpoint_every": INT_AT_LEAST_1,
        "threads": THREADS,
        "parallel": INT_AT_LEAST_1})

    if not resume:
        cfg = OmegaConf.merge(cfg, {"run_id": uuid.uuid4().hex})
    store = EvaluationStore(cfg.store or run_dir / STORE)
    evaluator.attach_run(run_dir, cfg.run_id)
    (retrainer or evaluator).keep_best_model(run_dir / BEST_MODEL)
    stored = StoredEvaluator(evaluator, store, run=cfg.run_id)

    def make_env() -> NASEnv:
        return NASEnv(space, stored, invalid_action=cfg.env.invalid_action, invalid_penalty=cfg.env.invalid_penalty,
                      reward=reward)

    # parallel > 1: an agent that proposes whole cells keeps every worker busy (AsyncSearch);
    # one that steps a vector env gets one env per worker, in lock-step (LockStepEnvs).
    cls = agent_class(cfg.agent.name)
    lock_step = parallel > 1 and not proposes(cls) and cls.supports_vector_env
    if parallel > 1 and not (proposes(cls) or lock_step):
        raise ValueError(f"parallel={parallel} needs an agent that proposes whole architectures (a Proposer, "
                         f"as random, evolution, reinforce or dreamer_v2) or steps a vector env (as ppo, a2c or "
                         f"dqn); agent {cfg.agent.name!r} does neither: use parallel=1")
    if parallel > 1 and cfg.evaluator.name == "supernet":
        raise ValueError("parallel > 1 does not drive the supernet evaluator: its one supernet learns from every "
                         "evaluation in turn, on its own workers (evaluator.backend, evaluator.workers); "
                         "use parallel=1")
    if lock_step:
        def settle(archs: list[str]) -> list[str]:
            # on the run's pool, started below once everything is valid
            paid = monitor.affordable(archs, budget)
            evaluate_all(pool, stored, paid)
            return paid

        monitor = VectorSearchMonitor(LockStepEnvs([make_env] * parallel, settle))
    else:
        monitor = SearchMonitor(make_env())
    if threads is not None:
        torch.set_num_threads(threads)
    agent = make_agent(cfg.agent.name, monitor, seed=cfg.seed, device=device, **hparams)
    pool_args = pool_settings(cfg, device) if parallel > 1 else None

    # Everything is valid: from here on the run writes to its directory.
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        OmegaConf.save(cfg, run_dir / CONFIG, resolve=True)
    agent.logger = monitor.logger = logger = TensorBoardLogger(run_dir / TENSORBOARD)
    progress = tqdm(total=budget.evaluations or budget.env_steps, disable=cfg.quiet, unit="eval",
                    desc=f"{cfg.agent.name} on {cfg.env.name}", dynamic_ncols=True)
    monitor.pareto, monitor.reward = pareto, reward

    def on_evaluation(monitor: SearchMonitor) -> None:
        _show(progress, monitor, budget)
        if pareto is not None and len(monitor.evaluations) % draw_every == 0:
            _log_front(monitor, pareto, logger, run_dir)

    monitor.on_evaluation = on_evaluation

    checkpoint = run_dir / CHECKPOINT
    if resume and checkpoint.is_file():
        state = checkpoints.load(checkpoint)
        agent.load_state_dict(state["agent"])
        monitor.restore(store.history(evaluator.fingerprint, run=cfg.run_id), **state["monitor"])
        _show(progress, monitor, budget)

    last_saved = len(monitor.evaluations)

    def save(agent) -> None:
        nonlocal last_saved
        if len(monitor.evaluations) - last_saved >= cfg.checkpoint_every or agent.checkpoint_each_callback:
            _save_checkpoint(checkpoint, agent, monitor)
            last_saved = len(monitor.evaluations)

    pool = EvaluationPool(**pool_args) if pool_args else None
    try:
        if pool is None:
            agent.learn(budget, callback=save)
        elif lock_step:
            def save_and_log(agent) -> None:
                save(agent)
                pool.log(logger, len(monitor.evaluations))

            agent.learn(budget, callback=save_and_log)
        else:
            search = AsyncSearch(agent, pool, stored)

            def save_every_result(agent) -> None:
                # After every result, with what is in flight: a resumed run evaluates exactly
                # that again, and the agent, restored to this point, proposes what it did.
                _save_checkpoint(checkpoint, agent, monitor, search.in_flight())
                _show(progress, monitor, budget, in_flight=len(search.waiting))
                pool.log(logger, len(monitor.evaluations))
                logger.scalar("parallel/in_flight", len(search.waiting), len(monitor.evaluations))

            resumed = state.get("in_flight", []) if resume and checkpoint.is_file() else []
            search.learn(budget, callback=save_every_result, resumed=resumed)
        busy_fraction = None if pool is None else pool.utilisation()
        progress.close()
        _save_checkpoint(checkpoint, agent, monitor)
        final = retrain_best(monitor, top_k, StoredEvaluator(retrainer, store, run=cfg.run_id), cfg.quiet) \
            if retrainer else None
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: {_command()} resume={run_dir}", file=sys.stderr)
        raise
    finally:
        progress.close()
        evaluator.close()
        if pool is not None:
            pool.close()

    report = _report(cfg, monitor, budget, run_dir, final)
    search = agent.search_report()
    if search:
        report["search"] = search
    if busy_fraction is not None:
        report["busy_fraction"] = round(busy_fraction, 3)  # of the workers' time, over the search
    parameters = None if report["best_arch"] is None else space.parameters(report["best_arch"])
    if parameters is not None:  # a hyperparameter point: its dict, and no cell to draw
        report["best_parameters"] = parameters
    elif report["best_arch"] is not None:
        png, _ = draw_cells(space, report["best_arch"], run_dir / BEST_CELL)
        logger.image("search/best_cell", png, len(monitor.evaluations))
        report["best_cell"] = str(png)
    if pareto is not None and pareto.front:
        report["pareto"] = pareto.report()
        logged = len(monitor.evaluations) % draw_every == 0  # drawn with the last evaluation
        report["pareto_front_png"] = str(_log_front(monitor, pareto, None if logged else logger, run_dir))
    if final:
        logger.text("final/retrained", "\n".join(f"{r['arch']}: test {r['test_acc']:.4f}" for r in final),
                    len(monitor.evaluations))
    logger.hparams(_flatten(to_dict(cfg)),
                   {"hparam/best_search_score": report["best_search_score"] or 0.0,
                    "hparam/best_test_score": report["best_test_score"] or 0.0})
    logger.close()
    (run_dir / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    store.close()
    if not cfg.quiet:
        print(summary(report))
    return report


def _command() -> str:
    """How the user started this run: ``python train.py`` in a checkout, else ``rlnas-train``."""
    program = Path(sys.argv[0]).name
    return f"python {program}" if program.endswith(".py") else "rlnas-train"


def _show(progress: tqdm, monitor: SearchMonitor, budget: Budget, in_flight: int | None = None) -> None:
    progress.set_postfix(best=f"{monitor.best.score:.4f}" if monitor.best else "-",
                         **({} if in_flight is None else {"in_flight": in_flight}), refresh=False)
    progress.update((len(monitor.evaluations) if budget.evaluations else monitor.env_steps) - progress.n)


def _log_front(monitor: SearchMonitor, pareto: ParetoArchive, logger: TensorBoardLogger | None,
               run_dir: Path) -> Path:
    """The front so far drawn to the run directory and (with a logger) to TensorBoard, with
    its hypervolume when the reference is fixed (against the costliest evaluation so far, it
    would move for that reason alone)."""
    n = len(monitor.evaluations)
    points = [(e.score, e.metrics[pareto.cost]) for e in monitor.evaluations
              if pareto.cost in e.metrics and "failed" not in e.metrics]
    png = draw_front(points, [(p["score"], p[pareto.cost]) for p in pareto.front], pareto.cost,
                     run_dir / PARETO_FRONT)
    if logger is None:
        return png
    logger.image("search/pareto_front", png, n)
    if pareto.given_reference is not None:
        logger.scalar("search/hypervolume", pareto.hypervolume, n)
    return png


def _save_checkpoint(path: Path, agent, monitor: SearchMonitor, in_flight: list[list[int]] = ()) -> None:
    checkpoints.save({"agent": agent.state_dict(),
                      "monitor": {"env_steps": monitor.env_steps, "episodes": monitor.episodes,
                                  "wall_seconds": monitor.wall_seconds},
                      "in_flight": list(in_flight)}, path)


def retrain_best(monitor: SearchMonitor, top_k: int, retrainer: Evaluator, quiet: bool = True) -> list[dict[str, Any]]:
    """Retrain the ``top_k`` best-scoring architectures stand-alone: a proxy's ranking is
    only a guess, and the stand-alone test accuracy is the number that counts."""
    ranked = sorted((e for e in monitor.evaluations if "failed" not in e.metrics), key=lambda e: -e.score)
    final = []
    for e in tqdm(ranked[:top_k], disable=quiet, desc="retraining the best stand-alone", unit="arch"):
        retrained = retrainer.evaluate(e.arch)
        final.append({"arch": e.arch, "search_score": e.score, "val_acc": retrained.metrics["val_acc"],
                      "test_acc": retrained.metrics["test_acc"], "params": retrained.metrics["params"]})
    return final


def _report(cfg: DictConfig, monitor: SearchMonitor, budget: Budget, run_dir: Path,
            final: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    best = monitor.best
    if budget.evaluations is not None and len(monitor.evaluations) >= budget.evaluations:
        stopped_by = "budget.evaluations"
    elif budget.env_steps is not None and monitor.env_steps >= budget.env_steps:
        stopped_by = "budget.env_steps"
    elif budget.patience is not None and monitor.stale_episodes >= budget.patience:
        stopped_by = "budget.patience"
    elif budget.resource is not None and monitor.resource_spent >= budget.resource:
        stopped_by = "budget.resource"
    else:
        stopped_by = "agent"  # e.g. random search ran out of unseen architectures
    report = {
        "agent": cfg.agent.name, "env": cfg.env.name, "evaluator": cfg.evaluator.name,
        "seed": cfg.seed, "evaluations": len(monitor.evaluations), "env_steps": monitor.env_steps,
        "episodes": monitor.episodes, "wall_seconds": round(monitor.wall_seconds, 3),
        "stopped_by": stopped_by,
        "best_arch": best.arch if best else None,
        "best_search_score": best.score if best else None,
        "best_test_score": best.metrics.get("test_acc") if best else None,
        "best_metrics": best.metrics if best else None,
        "run_dir": str(run_dir),
        "best_model": str(run_dir / BEST_MODEL) if (run_dir / BEST_MODEL).is_file() else None,
    }
    failed = [e.metrics["failed"] for e in monitor.evaluations if "failed" in e.metrics]
    if failed:  # paid for and stored, never the best: say so, or a run of crashes looks like an empty one
        report.update(failed=len(failed), first_failure=failed[0])
    reward = monitor.reward
    if reward.name != "accuracy":  # what was maximised, and whether anything met the targets
        evaluated = [e.metrics for e in monitor.evaluations if "failed" not in e.metrics]
        report["reward"] = {**to_dict(cfg.reward), "best_reward": monitor.best_reward if best else None}
        if isinstance(reward, Constrained):
            report["reward"]["within_targets"] = sum(reward.meets(m) for m in evaluated)
            why = reward.none_meets(evaluated)
            if why:
                report["reward"]["none_within_targets"] = why
    spent = [e.metrics["resource"] for e in monitor.evaluations if "resource" in e.metrics]
    if spent:  # trials that report per-step results: what early stopping saved
        full = max((e.metrics["resource"] for e in monitor.evaluations if "resource" in e.metrics
                    and "stopped_at" not in e.metrics and "failed" not in e.metrics), default=max(spent))
        report.update(resource_spent=monitor.resource_spent, full_trial_equivalents=round(sum(spent) / full, 2),
                      stopped_early=sum("stopped_at" in e.metrics for e in monitor.evaluations))
    if final:
        # The headline is the stand-alone retrain, chosen by its validation accuracy.
        chosen = max(final, key=lambda r: r["val_acc"])
        report.update({"final": final, "best_arch": chosen["arch"], "best_search_score": chosen["search_score"],
                       "best_test_score": chosen["test_acc"]})
    return report


def summary(report: dict[str, Any]) -> str:
    test = report["best_test_score"]
    lines = [
        "",
        f"rlnas: {report['agent']} on {report['env']} ({report['evaluator']} evaluator), "
        f"seed {report['seed']}",
        f"  evaluations   {report['evaluations']} distinct ({report['env_steps']} env steps, "
        f"stopped by {report['stopped_by']}) in {report['wall_seconds']:.1f} s",
        f"  best arch     {report['best_arch']}",
        f"  search score  {report['best_search_score']:.4f}"
        + (f" (minimized: value {report['best_metrics']['value']:.4g})"
           if "value" in (report.get("best_metrics") or {}) else "")
        if report["best_search_score"] is not None else "  search score  -",
        f"  test score    {test:.4f}" if test is not None else "  test score    - (evaluator has none)",
        *([f"  retrained     {len(report['final'])} best stand-alone; the headline is the one with the best "
           "validation accuracy:"]
          + [f"    search {r['search_score']:.4f}  stand-alone val {r['val_acc']:.4f}  test {r['test_acc']:.4f}  "
             f"{r['arch']}" for r in report["final"]] if report.get("final") else []),
        *([f"  reward        {report['reward']['name']}: best {report['reward']['best_reward']:.4f}"
           + (f", {report['reward']['within_targets']} of {report['evaluations']} evaluated within the targets"
              if "within_targets" in report["reward"] else "")]
          if report.get("reward") and report["reward"]["best_reward"] is not None else []),
        *([f"  failed        {report['failed']} of {report['evaluations']} evaluations; the first: "
           f"{report['first_failure']}"] if report.get("failed") else []),
        *([f"  warning       {report['reward']['none_within_targets']}"]
          if report.get("reward", {}).get("none_within_targets") else []),
        *([f"  one-shot      {report['search']['epochs']} epochs ({report['search']['relaxation']}); the last "
           f"derived cell has {report['search']['history'][-1]['parameter_free']:.0%} parameter-free ops, "
           f"architecture-weight entropy {report['search']['history'][-1]['entropy']:.3f} (1 = uniform)"]
          if report.get("search", {}).get("history") else []),
        *([f"  best cell     {report['best_cell']}"] if report.get("best_cell") else []),
        *([f"  best model    {report['best_model']}"] if report.get("best_model") else []),
        *([f"  pareto front  {len(report['pareto']['front'])} cells over (score, {report['pareto']['cost']}), "
           f"hypervolume {report['pareto']['hypervolume']:.4g} from {report['pareto']['reference']}: "
           f"{report['pareto_front_png']}"] if report.get("pareto") else []),
        f"  report        {Path(report['run_dir']) / REPORT}",
        f"  TensorBoard   tensorboard --logdir {Path(report['run_dir']) / TENSORBOARD}",
    ]
    return "\n".join(lines)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
