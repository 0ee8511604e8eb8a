"""One search run: build it, drive it, report it; ``train.py`` is a thin Hydra shell around it.

Run directory::

    config.yaml          resolved config (with the run id), what ``resume=`` reads back
    evaluations.sqlite   every evaluation, committed as it finishes
    checkpoint.pt        agent + counters at the last consistent point (weights_only-safe)
    tb/                  TensorBoard events
    report.json          the result, for scripts
    best_model.pt        the best network the run trained (scratch, retrain), weights_only-safe
    best_cell.png, .svg  a drawing of the best architecture

On resume, whatever the agent replays between the checkpoint and the kill is answered by
the store for free, so the run continues exactly as an uninterrupted one would have.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from rlnas.evaluators.stored import StoredEvaluator
from rlnas.search.build import CONFIG, Search, build
from rlnas.search.driver import AsyncSearch, retry_failures
from rlnas.search.fail_fast import SystematicFailure
from rlnas.search.report import REPORT, draw_pareto_front, flatten, pictures, report, retrain_best, summary


def load_run_config(run_dir: str | Path) -> DictConfig:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume {run_dir}: no {CONFIG} there (is it an rlnas run directory?)")
    return OmegaConf.load(path)


def run(cfg: DictConfig | dict, run_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) the search ``cfg`` describes in ``run_dir``; return the report."""
    search = build(cfg, run_dir, resume)  # everything checked: from here on the run writes to its directory
    search.run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        OmegaConf.save(OmegaConf.create(search.values), search.run_dir / CONFIG)
    try:
        drive(search, resume)
        top_k, retrainer = search.retrain
        final = None if retrainer is None else retrain_best(
            search.monitor.evaluations, top_k, StoredEvaluator(retrainer, search.stored.store, search.config.run_id),
            search.config.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: {command()} resume={search.run_dir}", file=sys.stderr)
        raise
    except SystematicFailure as stop:
        raise SystematicFailure(f"{stop}\n  fix that, then continue: {command()} resume={search.run_dir} (the failed "
                                "evaluations run again; add retry_failed=false to keep them failed)") from None
    finally:
        search.stored.close()
        if search.pool is not None:
            search.pool.close()
    return finish(search, final)


def drive(search: Search, resume: bool = False) -> None:
    """Search until the budget is spent, by the strategy, with progress and checkpoints."""
    agent, monitor, checkpoints, pool = search.agent, search.monitor, search.checkpoints, search.pool
    progress = Progress(search)
    search.observers.append(progress.observe)
    if resume and search.config.retry_failed:
        retry_failures(search.stored, pool)
    in_flight = checkpoints.restore(agent, search.stored) if resume else []
    if search.pareto is not None:  # restored evaluations: the front knows them again
        for evaluation in monitor.evaluations:
            search.pareto.add(evaluation.arch, evaluation.score, evaluation.metrics)
    try:
        if search.strategy == "asynchronous":
            loop = AsyncSearch(agent, pool, search.stored)

            def after_result(agent: Any) -> None:
                # With what is in flight: a resumed run evaluates exactly that again, and the
                # agent, restored to this point, proposes what it did.
                checkpoints.save(agent, loop.in_flight())
                progress.show(in_flight=len(loop.waiting))
                pool.log(search.logger, len(monitor.evaluations))
                search.logger.scalar("parallel/in_flight", len(loop.waiting), len(monitor.evaluations))

            loop.learn(search.budget, after_result, resumed=in_flight)
        else:
            def after_update(agent: Any) -> None:
                checkpoints.maybe_save(agent)
                progress.show()
                if pool is not None:
                    pool.log(search.logger, len(monitor.evaluations))

            agent.learn(search.budget, callback=after_update)
    finally:
        progress.close()
    checkpoints.save(agent)


class Progress:
    """The progress bar (evaluations, or the agent's unit), redrawing the front as it goes."""

    def __init__(self, search: Search):
        self.search = search
        done, total, unit = search.agent.progress() or (0, search.budget.evaluations or search.budget.env_steps, "eval")
        values = search.values
        self.bar = tqdm(total=total, initial=done, disable=search.config.quiet, unit=unit, dynamic_ncols=True,
                        desc=f"{values['agent']['name']} on {values['env']['name']}")

    def observe(self, evaluation: Any) -> None:
        search = self.search
        if search.pareto is not None and len(search.monitor.evaluations) % search.config.pareto.every == 0:
            draw_pareto_front(search)
        self.show()

    def show(self, in_flight: int | None = None) -> None:
        m, budget = self.search.monitor, self.search.budget
        own = self.search.agent.progress()
        done = own[0] if own else len(m.evaluations) if budget.evaluations else m.env_steps
        self.bar.set_postfix(best=f"{m.best.score:.4f}" if m.best else "-",
                             **({} if in_flight is None else {"in_flight": in_flight}), refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def finish(search: Search, final: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The report, written with its pictures, TensorBoard's hyperparameters and the summary."""
    out = report(search, final)
    pictures(search, out)
    n = len(search.monitor.evaluations)
    if final:
        search.logger.text("final/retrained", "\n".join(f"{r['arch']}: test {r['test_acc']:.4f}" for r in final), n)
    search.logger.hparams(flatten(search.values), {"hparam/best_search_score": out["best_search_score"] or 0.0,
                                                   "hparam/best_test_score": out["best_test_score"] or 0.0})
    search.logger.close()
    (search.run_dir / REPORT).write_text(json.dumps(out, indent=2) + "\n")
    if not search.config.quiet:
        print(summary(out))
    return out


def command() -> str:
    """How the user started this run: ``python train.py`` in a checkout, else ``rlnas-train``."""
    program = Path(sys.argv[0]).name
    return f"python {program}" if program.endswith(".py") else "rlnas-train"
