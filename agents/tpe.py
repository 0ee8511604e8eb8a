"""Tree-structured Parzen Estimator (Bergstra et al. 2011) through Optuna's ask-and-tell.

One categorical per decision, asked define-by-run over the choices legal given the ones
before, so masks and conditional decisions hold by construction; a continuous decision is
one float in [0, 1] (the space maps it onto its range: log-uniform ranges are uniform
there), asked only where it is used. A checkpoint keeps the
finished trials as plain values (no pickle) and the sampler is re-seeded from the agent's
generator before every ask, so a resumed search asks what an uninterrupted one would.
Needs ``pip install 'rlnas[optuna]'``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rlnas.agents.architecture_agent import ArchitectureAgent
from rlnas.agents.base import AgentConfig
from rlnas.core.settings import INT_AT_LEAST_1, setting
from rlnas.spaces import Decisions

try:
    import optuna
except ImportError:  # the agent says what to install when it is built
    optuna = None


@dataclass
class TPEConfig(AgentConfig):
    """Optuna's TPESampler; ``nas``: one joint density (Falkner et al. 2018), better and faster."""

    PRESETS: ClassVar[dict] = {"nas": {"multivariate": True}}
    n_startup_trials: int = setting(10, "random trials before the densities are used", INT_AT_LEAST_1)
    n_ei_candidates: int = setting(24, "candidates drawn from the good density per suggestion", INT_AT_LEAST_1)
    multivariate: bool = setting(False, "one joint density over all decisions instead of one per decision")


class TPE(ArchitectureAgent):
    Config = TPEConfig
    name = "tpe"

    def __init__(self, env, config: TPEConfig | None = None, seed: int = 0, device: str = "cpu", **settings):
        if optuna is None:
            raise ImportError("agent 'tpe' needs Optuna: pip install 'rlnas[optuna]'")
        super().__init__(env, config, seed, device, **settings)
        c = self.config
        self.sampler_kwargs = {"n_startup_trials": c.n_startup_trials, "n_ei_candidates": c.n_ei_candidates,
                               "multivariate": c.multivariate}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction="maximize")
        self.trials: dict[Decisions, list[optuna.Trial]] = {}  # asked, not yet told (several in a parallel run)

    def propose(self) -> Decisions:
        trial = self._ask()
        decisions: list[int | float] = []
        for step in range(self.space.num_decisions):
            if not self.space.is_value(step):
                legal = self.space.legal_choices(decisions)
                decisions.append(trial.suggest_categorical(self._param(step, decisions), list(legal)))
            elif self.space.value_used(decisions):
                decisions.append(self.space.canonical_value(step, trial.suggest_float(self._param(step, decisions),
                                                                                      0.0, 1.0)))
            else:
                decisions.append(0.0)
        self.trials.setdefault(tuple(decisions), []).append(trial)
        return tuple(decisions)

    def observe(self, decisions: Decisions, score: float) -> None:
        asked = self.trials.get(decisions)
        if not asked:  # proposed before a checkpoint this run resumed from: ask it again, fixed
            self.study.enqueue_trial({self._param(step, decisions[:step]): decisions[step]
                                      for step in range(self.space.num_decisions)
                                      if not self.space.is_value(step) or self.space.value_used(decisions[:step])})
            self.propose()
            asked = self.trials[decisions]
        self.study.tell(asked.pop(0), score)
        if not asked:
            del self.trials[decisions]

    def _ask(self) -> optuna.Trial:
        with warnings.catch_warnings():  # multivariate is "experimental" in Optuna, and says so each time
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.sampler = optuna.samplers.TPESampler(seed=int(self.rng.integers(2**32)), **self.sampler_kwargs)
        return self.study.ask()

    def _param(self, step: int, before: Sequence[int | float]) -> str:
        """Decision ``step``'s parameter: its name, and a choice's legal range given the decisions ``before``."""
        name = f"{step}:{self.space.decision_names()[step]}"
        if self.space.is_value(step):
            return name
        legal = self.space.legal_choices(list(before))
        return f"{name}[{legal.start}:{legal.stop}]"

    def state_dict(self) -> dict[str, Any]:
        finished = [t for t in self.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        return {**super().state_dict(),
                "trials": [{"params": t.params, "value": t.value,
                            "distributions": {k: optuna.distributions.distribution_to_json(d)
                                              for k, d in t.distributions.items()}}
                           for t in finished]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.study = optuna.create_study(direction="maximize")
        self.study.add_trials([optuna.trial.create_trial(
            params=t["params"], value=t["value"], distributions=_distributions(t)) for t in state["trials"]])


def _distributions(trial: dict[str, Any]) -> dict[str, Any]:
    """A checkpointed trial's distributions (an older checkpoint lists only categorical choices)."""
    if "choices" in trial:
        return {k: optuna.distributions.CategoricalDistribution(c) for k, c in trial["choices"].items()}
    return {k: optuna.distributions.json_to_distribution(d) for k, d in trial["distributions"].items()}
