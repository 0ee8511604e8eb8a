"""What a finished search says: ``report.json``, the printed summary, and pictures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rlnas.core.store import Evaluation
from rlnas.drawing import draw_cells, draw_front
from rlnas.evaluators.base import Evaluator
from rlnas.search.build import TENSORBOARD, Search
from rlnas.search.rewards import Constrained

REPORT, BEST_CELL, PARETO_FRONT, BEST_MODEL = "report.json", "best_cell", "pareto_front.png", "best_model.pt"


def stopped_by(search: Search) -> str:
    """Which limit of the budget ended the search ("agent": it had nothing left to try)."""
    m, budget = search.monitor, search.budget
    for limit, spent in (("evaluations", len(m.evaluations)), ("env_steps", m.env_steps),
                         ("patience", m.stale_episodes), ("resource", m.resource_spent)):
        if getattr(budget, limit) is not None and spent >= getattr(budget, limit):
            return f"budget.{limit}"
    return "agent"  # e.g. random search ran out of unseen architectures


def report(search: Search, final: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The run's result, as ``report.json`` keeps it."""
    m, values, best = search.monitor, search.values, search.monitor.best
    out: dict[str, Any] = {
        "agent": values["agent"]["name"], "env": values["env"]["name"], "evaluator": values["evaluator"]["name"],
        "seed": search.config.seed, "evaluations": len(m.evaluations), "env_steps": m.env_steps,
        "episodes": m.episodes, "wall_seconds": round(m.wall_seconds, 3), "stopped_by": stopped_by(search),
        "best_arch": best.arch if best else None, "best_search_score": best.score if best else None,
        "best_test_score": best.metrics.get("test_acc") if best else None,
        "best_metrics": best.metrics if best else None, "run_dir": str(search.run_dir),
        "best_model": str(search.run_dir / BEST_MODEL) if (search.run_dir / BEST_MODEL).is_file() else None,
    }
    if best is not None and "value" in best.metrics:  # a minimised objective: its loss, as it was reported
        out["best_loss"] = best.metrics["value"]
    failed = [e.metrics["failed"] for e in m.evaluations if "failed" in e.metrics]
    if failed:  # paid for and stored, never the best: say so, or a run of crashes looks like an empty one
        out.update(failed=len(failed), first_failure=failed[0])
    if search.reward.metrics:  # what was maximised, and whether anything met the targets
        out["reward"] = reward_report(search)
    spent = [e.metrics["resource"] for e in m.evaluations if "resource" in e.metrics]
    if spent:  # trials that report per-step results: what early stopping saved
        full = max((e.metrics["resource"] for e in m.evaluations if "resource" in e.metrics
                    and "stopped_at" not in e.metrics and "failed" not in e.metrics), default=max(spent))
        out.update(resource_spent=m.resource_spent, full_trial_equivalents=round(sum(spent) / full, 2),
                   stopped_early=sum("stopped_at" in e.metrics for e in m.evaluations))
    if final:  # the headline is the stand-alone retrain, chosen by its validation accuracy
        chosen = max(final, key=lambda r: r["val_acc"])
        out.update({"final": final, "best_arch": chosen["arch"], "best_search_score": chosen["search_score"],
                    "best_test_score": chosen["test_acc"]})
    if search.agent.search_report():
        out["search"] = search.agent.search_report()
    if search.pool is not None:
        out["busy_fraction"] = round(search.pool.utilisation(), 3)  # of the workers' time, over the search
    return out


def reward_report(search: Search) -> dict[str, Any]:
    m, reward = search.monitor, search.reward
    out = {**search.values["reward"], "best_reward": m.best_reward if m.best else None}
    if isinstance(reward, Constrained):
        evaluated = [e.metrics for e in m.evaluations if "failed" not in e.metrics]
        out["within_targets"] = sum(reward.meets(metrics) for metrics in evaluated)
        if why := reward.none_meets(evaluated):
            out["none_within_targets"] = why
    return out


def pictures(search: Search, out: dict[str, Any]) -> None:
    """The best architecture (or parameters) and the front, drawn into the run directory."""
    n, arch = len(search.monitor.evaluations), out["best_arch"]
    parameters = None if arch is None else search.space.parameters(arch)
    if parameters is not None:  # a hyperparameter point: its dict, and no cell to draw
        out["best_parameters"] = parameters
    elif arch is not None:
        png, _ = draw_cells(search.space, arch, search.run_dir / BEST_CELL)
        search.logger.image("search/best_cell", png, n)
        out["best_cell"] = str(png)
    pareto = search.pareto
    if pareto is not None and pareto.front:
        out["pareto"] = pareto.report()
        drawn = n % search.config.pareto.every == 0  # with the last evaluation
        out["pareto_front_png"] = str(draw_pareto_front(search, log=not drawn))


def draw_pareto_front(search: Search, log: bool = True) -> Path:
    """The front drawn to the run directory and TensorBoard, with a fixed reference's hypervolume."""
    pareto, evaluations = search.pareto, search.monitor.evaluations
    points = [(e.score, e.metrics[pareto.cost]) for e in evaluations
              if pareto.cost in e.metrics and "failed" not in e.metrics]
    png = draw_front(points, [(p["score"], p[pareto.cost]) for p in pareto.front], pareto.cost,
                     search.run_dir / PARETO_FRONT)
    if log:
        search.logger.image("search/pareto_front", png, len(evaluations))
        if pareto.given_reference is not None:
            search.logger.scalar("search/hypervolume", pareto.hypervolume, len(evaluations))
    return png


def retrain_best(evaluations: Sequence[Evaluation], top_k: int, retrainer: Evaluator,
                 quiet: bool = True) -> list[dict[str, Any]]:
    """Retrain the ``top_k`` best stand-alone: a proxy's ranking is only a guess."""
    ranked = sorted((e for e in evaluations if "failed" not in e.metrics), key=lambda e: -e.score)
    final = []
    for e in tqdm(ranked[:top_k], disable=quiet, desc="retraining the best stand-alone", unit="arch"):
        retrained = retrainer.evaluate(e.arch)
        final.append({"arch": e.arch, "search_score": e.score, "val_acc": retrained.metrics["val_acc"],
                      "test_acc": retrained.metrics["test_acc"], "params": retrained.metrics["params"]})
    return final


def summary(report: dict[str, Any]) -> str:
    test = report["best_test_score"]
    lines = [
        "",
        f"rlnas: {report['agent']} on {report['env']} ({report['evaluator']} evaluator), "
        f"seed {report['seed']}",
        f"  evaluations   {report['evaluations']} distinct ({report['env_steps']} env steps, "
        f"stopped by {report['stopped_by']}) in {report['wall_seconds']:.1f} s",
        f"  best arch     {report['best_arch']}",
        (f"  best loss     {report['best_loss']:.6g} (minimized; search score {report['best_search_score']:.6g})"
         if "best_loss" in report else f"  search score  {report['best_search_score']:.4f}")
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


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
