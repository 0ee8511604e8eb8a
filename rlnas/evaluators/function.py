"""Score with the user's own Python function."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlnas.core.imports import import_callable
from rlnas.core.settings import MISSING, Text, setting
from rlnas.core.store import Evaluation
from rlnas.evaluators.base import Evaluator, EvaluatorConfig, Objective, failed, optimize_mode


@dataclass
class FunctionConfig(EvaluatorConfig):
    fn: str = setting(MISSING, "your objective: score(arch: str) -> float, or score(params: dict) on a "
                               "hyperparameter space", Text("an import path 'package.module:function'"))
    optimize_mode: str = optimize_mode()


class CallableEvaluator(Evaluator):
    """Score with any function ``arch string -> float`` (the parameter dict on an HPO
    space), or ``-> dict`` of metrics whose ``"default"`` is the score. ``fn`` is an import
    path ``"package.module:function"`` or, from Python, the function (``label`` names it in
    the store). An exception it raises is a failed evaluation (``metrics["traceback"]``
    says where), and the search goes on."""

    Config = FunctionConfig
    name = "function"
    costs = None  # whatever the function reports

    def __init__(self, space=None, fn: Callable[[Any], Any] | str | None = None, label: str | None = None, *,
                 config: FunctionConfig | None = None, run=None, **settings: Any):
        function = fn if callable(fn) else None
        if function is not None:
            settings["fn"] = label or getattr(function, "__qualname__", "fn")
        elif fn is not None:
            settings["fn"] = fn
        super().__init__(space, config=config, run=run, **settings)
        self.fn = function or import_callable(self.config.fn)
        self.objective = Objective(self.config.owner, self.config.optimize_mode, "the function's value")
        self.fingerprint = f"callable:{label or self.config.fn}{self.objective.suffix}"

    def evaluate(self, arch: str) -> Evaluation:
        start = time.perf_counter()
        parameters = self.space.parameters(arch)
        try:
            value = self.fn(arch if parameters is None else parameters)
        except Exception as err:
            return failed(arch, f"{type(err).__name__}: {err}", {"traceback": traceback.format_exc()[-2000:]},
                          time.perf_counter() - start)
        return self.objective.evaluation(arch, value, {}, cost=time.perf_counter() - start)
