"""From a composed config to a search: every component built and every value checked
before any work, so that a bad one fails with a message naming the key, the value and
what is allowed, and leaves nothing on disk."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from rlnas.core.context import RunContext
from rlnas.core.logger import Logger, TensorBoardLogger
from rlnas.core.registry import AGENTS, BACKENDS, EVALUATORS, REWARDS, SCHEDULERS, SPACES
from rlnas.core.store import Evaluation, EvaluationStore
from rlnas.envs import Budget, NASEnv, SearchMonitor, VectorSearchMonitor
from rlnas.evaluators.base import Evaluator
from rlnas.evaluators.scratch import ScratchConfig, ScratchEvaluator
from rlnas.evaluators.stored import StoredEvaluator
from rlnas.evaluators.train import TrainEvaluator
from rlnas.execution.pool import Pool
from rlnas.nn.space import ModelSpace
from rlnas.search.config import AUTO, REGISTRIES, RunConfig
from rlnas.search.driver import Checkpoints, strategy
from rlnas.search.fail_fast import FailFast
from rlnas.search.lockstep import LockStepEnvs, evaluate_all
from rlnas.search.pareto import ParetoArchive
from rlnas.search.rewards import Constrained, Reward
from rlnas.spaces import SearchSpace

CONFIG, STORE, CHECKPOINT, TENSORBOARD = "config.yaml", "evaluations.sqlite", "checkpoint.pt", "tb"


@dataclass
class Search:
    """Everything one search is made of."""

    config: RunConfig
    values: dict[str, Any]  # the composed config as plain values: what config.yaml keeps
    run_dir: Path | None
    run: RunContext
    space: SearchSpace
    stored: StoredEvaluator
    retrain: tuple[int, Evaluator | None]
    reward: Reward
    pareto: ParetoArchive | None
    agent: Any
    monitor: Any
    logger: Logger
    strategy: str
    checkpoints: Checkpoints
    pool: Pool | None
    observers: list[Callable[[Evaluation], None]]  # each new evaluation is handed to every one

    @property
    def budget(self) -> Budget:
        return self.config.budget


def plain(cfg: DictConfig | dict) -> dict[str, Any]:
    """A composed config as plain values; a ``???`` the user left is refused by its key."""
    if not isinstance(cfg, DictConfig):
        return dict(cfg)
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        raise ValueError(f"{err.full_key} has no value: give it on the command line, {err.full_key}=...") from err


def build(cfg: DictConfig | dict, run_dir: str | Path | None = None, resume: bool = False) -> Search:
    """The search ``cfg`` describes, to run in ``run_dir`` (None: in memory); writes nothing."""
    values = plain(cfg)
    config = RunConfig.make({k: v for k, v in values.items() if k != "hydra"})
    if not resume:
        config = replace(config, run_id=uuid.uuid4().hex)
    values["run_id"] = config.run_id
    parts = {group: registry.config(values[group]["name"], values[group]) for group, registry in REGISTRIES.items()}
    run_dir = None if run_dir is None else Path(run_dir)
    space = SPACES.get(parts["env"].name)(config=parts["env"])
    run = RunContext(config.seed, resolve_device(config.device), config.threads, run_dir, config.run_id,
                     SCHEDULERS.get(parts["scheduler"].name)(config=parts["scheduler"]), parts["backend"],
                     parts["dataset"])
    evaluator = EVALUATORS.get(parts["evaluator"].name)(space=space, config=parts["evaluator"], run=run)
    reward = REWARDS.get(parts["reward"].name)(config=parts["reward"])
    agent_class = AGENTS.get(parts["agent"].name)
    how = check_combination(config, space, evaluator, reward, agent_class)
    store = EvaluationStore(config.store or (run_dir / STORE if run_dir else ":memory:"))
    stored = StoredEvaluator(evaluator, store, run=config.run_id, watch=FailFast(config.fail_fast).see)
    logger = TensorBoardLogger(run_dir / TENSORBOARD) if run_dir else Logger()  # opened at its first write
    observers: list[Callable[[Evaluation], None]] = []
    pareto = pareto_archive(config, evaluator)
    if pareto is not None:
        observers.append(lambda e: pareto.add(e.arch, e.score, e.metrics))
    monitor = make_monitor(how, config, space, stored, parts["env"], reward, logger, observers, lambda: pool)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    agent = agent_class(monitor, parts["agent"], seed=config.seed, device=run.device)
    checkpoints = Checkpoints(run_dir / CHECKPOINT if run_dir else None, config.checkpoint_every, monitor)
    pool = None if how == "sequential" else worker_pool(config, space, evaluator, run, parts["backend"])
    return Search(config, values, run_dir, run, space, stored, retrainer(evaluator, run), reward, pareto, agent,
                  monitor, logger, how, checkpoints, pool, observers)


def resolve_device(device: str) -> str:
    if device == AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_combination(config: RunConfig, space: SearchSpace, evaluator: Evaluator, reward: Reward,
                      agent_class: type) -> str:
    """What the parts cannot do together, refused; the driver's strategy for them."""
    if isinstance(reward, Constrained) and getattr(evaluator.config, "optimize_mode", "") == "minimize":
        raise ValueError(Constrained.NEEDS)
    if config.budget.evaluations is not None and config.budget.evaluations > space.size:
        raise ValueError(f"budget.evaluations={config.budget.evaluations} exceeds the {space.size} distinct "
                         f"architectures of search space {space.name!r}")
    how = strategy(agent_class, config.parallel)
    if how != "sequential" and evaluator.name == "supernet" and evaluator.config.mode == "enas":
        raise ValueError("parallel > 1 does not drive an enas supernet: its one set of weights learns from every "
                         "evaluation in turn; use parallel=1, or evaluator.mode=oneshot (frozen weights, a copy on "
                         "each worker)")
    return how


def make_monitor(how: str, config: RunConfig, space: SearchSpace, stored: StoredEvaluator, env: Any,
                 reward: Reward, logger: Logger, observers: list, pool: Callable[[], Pool]) -> Any:
    """The env (one, or one per worker in lock-step) and the monitor that counts it."""
    weighed = reward if reward.metrics else None  # a reward that weighs no cost is the score itself

    def observe(evaluation: Evaluation) -> None:
        for observer in observers:
            observer(evaluation)

    def make_env() -> NASEnv:
        return NASEnv(space, stored, invalid_action=env.invalid_action, invalid_penalty=env.invalid_penalty,
                      reward=weighed)

    if how != "lock_step":
        return SearchMonitor(make_env(), weighed, logger, observe)

    def settle(archs: list[str]) -> list[str]:
        paid = monitor.affordable(archs, config.budget)
        evaluate_all(pool(), stored, paid)
        return paid

    monitor = VectorSearchMonitor(LockStepEnvs([make_env] * config.parallel, settle), weighed, logger, observe)
    return monitor


def pareto_archive(config: RunConfig, evaluator: Evaluator) -> ParetoArchive | None:
    """The run's front over ``pareto.cost`` (a cost the evaluator reports); None for none."""
    cost, reference, costs = config.pareto.cost, config.pareto.reference, evaluator.costs
    if cost == AUTO:
        cost = "params" if costs is None or "params" in costs else None
    elif cost is not None and costs is not None and cost not in costs:
        raise ValueError(f"pareto.cost={cost!r}: the {evaluator.name} evaluator reports no such cost; it reports "
                         f"{', '.join(costs) or 'none'} (pareto.cost=null: no front)")
    return None if cost is None else ParetoArchive(cost, None if reference is None else tuple(map(float, reference)))


def retrainer(evaluator: Evaluator, run: RunContext) -> tuple[int, Evaluator | None]:
    """``(top_k, scratch evaluator)`` retraining a proxy evaluator's best, or ``(0, None)``."""
    settings = getattr(evaluator.config, "retrain", None)
    if settings is None or settings.top_k == 0:
        return 0, None
    c, space = evaluator.config, evaluator.space
    if isinstance(space, ModelSpace):  # the user's model: trained as evaluator=train trains it
        return settings.top_k, TrainEvaluator(space=space, seed=c.seed, epochs=settings.epochs, run=run)
    scratch = ScratchConfig.make(name="scratch", seed=c.seed, epochs=settings.epochs, channels=settings.channels,
                                 cells_per_stage=settings.cells_per_stage)
    return settings.top_k, ScratchEvaluator(space=space, config=scratch, run=run)


def worker_pool(config: RunConfig, space: SearchSpace, evaluator: Evaluator, run: RunContext, backend: Any) -> Pool:
    """``parallel`` workers on the run's backend, each with the evaluator, pinned to the GPUs."""
    inline = replace(run, backend=BACKENDS.config("inline"))
    factory = partial(type(evaluator), space=space, config=evaluator.config, run=inline)
    gpus = torch.cuda.device_count() if run.device.startswith("cuda") else 0
    return BACKENDS.get(backend.name)(factory, config.parallel, backend, gpus=gpus)
