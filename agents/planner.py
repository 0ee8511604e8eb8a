"""Model-predictive search: plan in a learned reward model, pay only for the plan's best.

The model is a Gaussian process on the decisions and their pairs
(:class:`~rlnas.world_models.pairwise_gp.PairwiseGP`), refit before every proposal. The
plan is Thompson sampling (Kandasamy et al. 2018): draw a function from the posterior
(shrunk towards its mean by ``temperature``: at 1 it explores more than 100 evaluations can
pay for, at 0 it stays in the first basin), score every candidate, pay for the best unseen.

* The first ``n_init`` cells are the initial design. On NB201 they are SynFlow's best cells
  spread apart: in SynFlow's order, each at least ``design_spread`` decisions from every one
  taken; elsewhere a Latin hypercube, every choice as often as the others.
* Scores are floored at their ``floor_quantile``: the search cares about the top, and a
  tenth of NB201 scores 10 %.
* Each choice is seen as itself and as its class (none, parameter-free, convolution), so
  one evaluation teaches about every op of its class on that decision.
* On NB201 the model also knows two data-free scores of each cell, SynFlow
  (:mod:`rlnas.networks.proxies`) and its parameter count (:mod:`rlnas.networks.costs`), as
  ranks, each with a weight of its own that the evaluations fit.
* Candidates are every cell of a space with at most ``enumerate_up_to``; in a larger one,
  the neighbours of the ``top_k`` best plus random cells, hill-climbed in the draw.
* A space with continuous decisions (hyperparameter ranges) has a model of its own, a
  Gaussian process on the values and choices (:class:`~rlnas.world_models.mixed_gp.MixedGP`),
  and its plan is the candidate of highest upper confidence bound, found by the same
  sampling and hill climbing (a value's neighbours are Gaussian steps of it).

How each setting was chosen: docs/benchmarks.md, "The planner at 50 evaluations".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlnas.agents.architecture_agent import ArchitectureAgent
from rlnas.agents.base import AgentConfig
from rlnas.agents.priors import choice_classes, latin_hypercube, nb201_proxies, nb201_proxy_columns, spread_design
from rlnas.core.settings import INT_AT_LEAST_0, INT_AT_LEAST_1, NON_NEGATIVE, POSITIVE, UNIT, setting
from rlnas.spaces import Decisions, NB201Space
from rlnas.world_models.mixed_gp import MixedGP
from rlnas.world_models.pairwise_gp import PairwiseGP


@dataclass
class PlannerConfig(AgentConfig):
    """Scales in standardised-score units; one setting for every NB201 table."""

    n_init: int = setting(10, "cells of the initial design", INT_AT_LEAST_1)
    design_spread: int = setting(2, "NB201 (SynFlow's table ships): the design is SynFlow's best cells, each at "
                                    "least this many decisions from the others; 0: a Latin hypercube", INT_AT_LEAST_0)
    unary_scale: float = setting(1.4142, "prior scale of a choice's own worth; with class_scale, a prior variance "
                                         "of 4 split equally", NON_NEGATIVE)
    pair_scale: float = setting(0.1, "prior scale of what two choices are worth together", NON_NEGATIVE)
    class_scale: float = setting(1.4142, "prior scale of what an op's class (none, parameter-free, convolution) "
                                         "is worth on a decision", NON_NEGATIVE)
    class_pair_scale: float = setting(0.1, "prior scale of what two classes are worth together (both class "
                                           "scales 0: no class terms)", NON_NEGATIVE)
    noise: float = setting(0.2, "observation noise", POSITIVE)
    floor_quantile: float = setting(0.5, "scores below this quantile of those seen are modelled as equal to it", UNIT)
    temperature: float = setting(0.4, "a draw's distance from the posterior mean: 1 is Thompson sampling, "
                                      "0 greedy", NON_NEGATIVE)
    proxy_scale: float = setting(1.0, "prior scale of SynFlow's weight (NB201 only: its table ships); 0 for none",
                                 NON_NEGATIVE)
    params_scale: float = setting(1.0, "prior scale of the parameter count's weight (NB201 only: its table ships); "
                                       "0 for none", NON_NEGATIVE)
    enumerate_up_to: int = setting(20000, "score every cell of a space this small (NB201: 15,625)", INT_AT_LEAST_0)
    top_k: int = setting(10, "larger spaces: the best cells whose neighbours are candidates", INT_AT_LEAST_1)
    random_candidates: int = setting(200, "larger spaces: random cells among the candidates", INT_AT_LEAST_0)
    planning_rounds: int = setting(2, "larger spaces: rounds of hill climbing in the drawn function", INT_AT_LEAST_0)
    beam: int = setting(5, "larger spaces: the candidates each round climbs from", INT_AT_LEAST_1)
    beta: float = setting(3.0, "continuous spaces: the plan maximises the posterior mean + beta standard deviations",
                          NON_NEGATIVE)


class ModelPredictiveSearch(ArchitectureAgent):
    Config = PlannerConfig
    name = "planner"

    def __init__(self, env, config: PlannerConfig | None = None, seed: int = 0, device: str = "cpu", **settings):
        super().__init__(env, config, seed, device, **settings)
        c = self.config
        nb201 = isinstance(self.space, NB201Space)  # where the proxies' tables ship
        synflow, params = nb201_proxy_columns(self.space) if nb201 else (None, None)
        if self.space.has_values:
            self.model = MixedGP([self.space.is_value(step) for step in range(self.space.num_decisions)])
        else:
            feature = None
            if nb201:
                feature = nb201_proxies(self.space, [(synflow, c.proxy_scale), (params, c.params_scale)])
            classes = choice_classes(self.space) if c.class_scale + c.class_pair_scale > 0 else None
            self.model = PairwiseGP(self.space.num_decisions, self.space.max_choices,
                                    unary_scale=c.unary_scale, pair_scale=c.pair_scale, noise=c.noise,
                                    feature=feature, feature_scale=1.0,
                                    classes=classes, class_scale=c.class_scale, class_pair_scale=c.class_pair_scale)
        self.everything = torch.tensor(self.space.all_cells()) if self.space.size <= c.enumerate_up_to else None
        if nb201 and c.design_spread > 0:
            cells = self.everything if self.everything is not None else torch.tensor(self.space.all_cells())
            self.design = spread_design(cells, synflow, c.n_init, c.design_spread)  # index k: cell k in both
        else:
            self.design = latin_hypercube(self.space, c.n_init, self.rng)
        self.scores: dict[Decisions, float] = {}  # everything evaluated, in order

    def propose(self) -> Decisions | None:
        if len(self.scores) + len(self.in_flight) >= self.space.size:
            return None
        if len(self.scores) + len(self.in_flight) < self.config.n_init:
            fresh = [d for d in self.design if self._unseen(d)]
            return fresh[0] if fresh else self.unseen_random(self.scores)
        archs = list(self.scores)
        y = np.array([self.scores[a] for a in archs])
        if isinstance(self.model, MixedGP):  # the target's ranks are modelled: no floor needed
            self.model.fit(torch.tensor(archs, dtype=torch.float64), torch.from_numpy(y))
            candidates, value = self._candidates(
                lambda cells: self.model.upper_confidence_bound(torch.tensor(cells, dtype=torch.float64),
                                                                self.config.beta).numpy())
        else:
            floored = np.maximum(y, np.quantile(y, self.config.floor_quantile))
            self.model.fit(torch.tensor(archs), torch.from_numpy(floored))
            draw = self.model.draw(torch.Generator().manual_seed(int(self.rng.integers(2**63))),
                                   temperature=self.config.temperature)
            if self.everything is not None:
                candidates = self.everything
                value = self.model.evaluate(draw, candidates)[:, 0].numpy()
            else:
                candidates, value = self._candidates(
                    lambda cells: self.model.evaluate(draw, torch.tensor(cells))[:, 0].numpy())
        for i in np.argsort(-value, kind="stable"):
            if self._unseen(chosen := tuple(c.item() if hasattr(c, "item") else c for c in candidates[i])):
                return chosen
        return self.unseen_random(self.scores)

    def observe(self, decisions: Decisions, score: float) -> None:
        self.scores[decisions] = score

    def _candidates(self, score: Callable[[list[Decisions]], np.ndarray]) -> tuple[list[Decisions], np.ndarray]:
        """Where the plan's best unevaluated cell likely is, in a space too large to score whole:
        ``score`` (the drawn function, or the upper confidence bound) on the neighbours of the best
        cells and random ones, then on the neighbours of its leaders, round after round."""
        c = self.config
        ranked = sorted(self.scores, key=self.scores.__getitem__, reverse=True)
        candidates = list(dict.fromkeys(
            [n for arch in ranked[:c.top_k] for n in self.space.neighbours(arch, self.rng)]
            + [self.space.sample(self.rng) for _ in range(c.random_candidates)]))
        value = score(candidates)
        for _ in range(c.planning_rounds):
            leaders = [candidates[i] for i in np.argsort(-value, kind="stable")[:c.beam]]
            known = set(candidates)
            new = list(dict.fromkeys(n for arch in leaders for n in self.space.neighbours(arch, self.rng)
                                     if n not in known))
            if new:
                candidates += new
                value = np.concatenate([value, score(new)])
        return candidates, value

    def _unseen(self, decisions: Decisions) -> bool:
        return decisions not in self.scores and decisions not in self.in_flight

    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "scores": [[list(d), s] for d, s in self.scores.items()]}
        if isinstance(self.model, MixedGP):  # its last fit's hyperparameters, where the next one starts
            state["model"] = self.model.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.scores = {tuple(d): s for d, s in state["scores"]}
        if isinstance(self.model, MixedGP):
            self.model.load_state_dict(state["model"])
