"""The settings of a whole run: one group per kind of component, and the top-level keys."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any

from rlnas.core.registry import AGENTS, BACKENDS, DATASETS, EVALUATORS, REWARDS, SCHEDULERS, SPACES
from rlnas.core.settings import INT_AT_LEAST_0, INT_AT_LEAST_1, MISSING, THREADS, Range, Settings, Text, nested, setting
from rlnas.envs.monitor import Budget

REGISTRIES = {"agent": AGENTS, "env": SPACES, "evaluator": EVALUATORS, "reward": REWARDS, "scheduler": SCHEDULERS,
              "backend": BACKENDS, "dataset": DATASETS}  # each config group's components
GROUPS = tuple(REGISTRIES)
AUTO = "auto"


@dataclass
class ParetoConfig(Settings):
    """Score against a cost: the front of everything a run evaluated (:mod:`rlnas.search.pareto`)."""

    cost: str | None = setting(AUTO, "the metric minimised against the score, one the evaluator reports (params, "
                                     "flops, latency_ms); auto: params where the evaluator reports it",
                               Text("a metric's name", none_means="no front"))
    reference: list[float] | None = setting(None, "[score, cost] the hypervolume is measured from")
    every: int = setting(25, "evaluations between drawings of the front in TensorBoard", INT_AT_LEAST_1)

    @property
    def owner(self) -> str:
        return "pareto"

    def validate(self) -> None:
        ref = self.reference
        if ref is not None and not (isinstance(ref, list | tuple) and len(ref) == 2 and all(
                isinstance(x, Real) and not isinstance(x, bool) for x in ref)):
            raise ValueError(f"pareto.reference must be [score, cost] (two numbers) or null, got {ref!r}")


@dataclass
class RunConfig(Settings):
    """The top-level keys of ``python train.py``; each config group is a key of its own."""

    seed: int = setting(0, "seeds the agent's generators and the env's first reset", INT_AT_LEAST_0)
    device: str = setting("auto", "auto, cpu or cuda[:N]: where agents and evaluators run (auto: cuda when there "
                                  "is one)", Text("auto, cpu or cuda[:N]"))
    threads: int | None = setting(1, "torch CPU threads: one keeps a seeded search the same on machines with "
                                     "different core counts, and NAS controllers are too small to gain from more",
                                  THREADS)
    parallel: int = setting(1, "evaluations at once, each on a worker of the backend", INT_AT_LEAST_1)
    budget: Budget = nested(Budget, "what the search may spend: the first limit reached stops it",
                            evaluations=200, patience=5000)
    pareto: ParetoConfig = nested(ParetoConfig, "score against a cost: the front of everything evaluated")
    store: str | None = setting(None, "an earlier run's evaluations.sqlite, to share its evaluations",
                                Text("a path", none_means="the run's own"))
    checkpoint_every: int = setting(10, "evaluations between checkpoints", INT_AT_LEAST_1)
    fail_fast: int | None = setting(5, "stop (exit code 3) when this many evaluations in a row fail the same way: "
                                       "the same exit code and last line of stderr, or the same error",
                                    Range(1, integer=True, none_means="never"))
    retry_failed: bool = setting(True, "on resume=, run this run's failed evaluations again (once their cause "
                                       "is fixed); false keeps them failed")
    quiet: bool = setting(False, "no progress bar and no summary (CI, batch jobs)")
    resume: str | None = setting(None, "a killed run's directory: continue it there",
                                 Text("a path", none_means="a new run"))
    run_id: str | None = setting(None, "set by the runner: names this run's rows in the store",
                                 Text("an id", none_means="a new run"))
    agent: Any = setting(MISSING, "the agent: agent=NAME selects it, agent.KEY=VALUE sets its settings")
    env: Any = setting(MISSING, "the search space, and what the env does with an illegal action")
    evaluator: Any = setting(MISSING, "what scores an architecture")
    reward: Any = setting(MISSING, "what a finished episode earns from its evaluation")
    scheduler: Any = setting(MISSING, "what stops trials early from their intermediate results")
    backend: Any = setting(MISSING, "where workers run: the parallel=N evaluations and the supernet's host")
    dataset: Any = setting(MISSING, "the data an evaluator that trains networks reads (evaluator=train)")

    @property
    def owner(self) -> str:
        return "config"

    def validate(self) -> None:
        if self.device != AUTO and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ValueError(f"device must be auto, cpu or cuda[:N], got {self.device!r}")
