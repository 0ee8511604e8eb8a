"""From a composed config (``conf/``) to objects, refusing impossible values before any
work starts: every builder here raises ``ValueError`` naming the key, the value, and
what is allowed."""

from __future__ import annotations

from importlib import resources
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from rlnas.evaluators import Evaluator, make_evaluator
from rlnas.monitor import Budget
from rlnas.pareto import ParetoArchive
from rlnas.ranges import INT_AT_LEAST_1, check
from rlnas.rewards import Reward, make_reward
from rlnas.spaces import SearchSpace, make_space

ENV_KEYS = ("name", "invalid_action", "invalid_penalty")  # the rest configures the space
# Where evaluations run when parallel > 1 (rlnas/parallel.py); the supernet's own backend
# keys have the same names and stay its own.
POOL_KEYS = ("backend", "workers", "address")
# The Hydra config groups: conf/ in a checkout, installed inside the package as rlnas.conf.
CONF = resources.files("rlnas.conf")


def agent_config(name: str) -> dict[str, Any]:
    """The hyperparameters ``train.py`` gives agent ``name`` (conf/agent/<name>.yaml): the NAS
    settings. Empty for agents without a file there (plugins: their constructor defaults)."""
    path = CONF / "agent" / f"{name}.yaml"
    cfg = dict(OmegaConf.to_container(OmegaConf.create(path.read_text()))) if path.is_file() else {}
    cfg.pop("name", None)
    return cfg


def to_dict(node: DictConfig | dict) -> dict[str, Any]:
    if not isinstance(node, DictConfig):
        return dict(node)
    try:
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:  # a "???" in the yaml: the user must say it
        raise ValueError(f"{err.full_key} has no value: give it on the command line, "
                         f"{err.full_key}=...") from err


def resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    return device


def build_space(env_cfg: DictConfig | dict) -> SearchSpace:
    env = to_dict(env_cfg)
    return make_space(env["name"], **{k: v for k, v in env.items() if k not in ENV_KEYS})


def build_evaluator(evaluator_cfg: DictConfig | dict, space: SearchSpace) -> Evaluator:
    kwargs = to_dict(evaluator_cfg)
    name = kwargs.pop("name")
    kwargs.pop("retrain", None)
    if name != "supernet":
        for key in POOL_KEYS:
            kwargs.pop(key, None)
    if "device" in kwargs:
        kwargs["device"] = resolve_device(kwargs["device"])
    return make_evaluator(name, space, **kwargs)


def pool_settings(cfg: DictConfig, device: str) -> dict[str, Any]:
    """:class:`~rlnas.parallel.EvaluationPool`'s arguments for a ``parallel > 1`` run: one
    worker per evaluation in flight, on ``evaluator.backend``; each process worker is pinned
    to one GPU when the run is on CUDA."""
    evaluator = to_dict(cfg.evaluator)
    workers = evaluator.get("workers") or cfg.parallel
    if workers != cfg.parallel:
        raise ValueError(f"evaluator.workers={workers!r} differs from parallel={cfg.parallel}: one worker runs "
                         "each evaluation in flight; set evaluator.workers=null (as many as parallel)")
    gpus = 0
    if device.startswith("cuda"):
        import torch

        gpus = torch.cuda.device_count()
    return {"spec": {"env": to_dict(cfg.env), "evaluator": evaluator}, "workers": workers,
            "backend": evaluator.get("backend", "process"), "address": evaluator.get("address"), "gpus": gpus}


def build_retrain(evaluator_cfg: DictConfig | dict, space: SearchSpace) -> tuple[int, Evaluator | None]:
    """The final stand-alone retrain of a proxy evaluator's best architectures:
    ``(top_k, scratch evaluator)``, or ``(0, None)`` when the config asks for none."""
    cfg = to_dict(evaluator_cfg)
    retrain = dict(cfg.get("retrain") or {})
    top_k = retrain.pop("top_k", 0)
    if top_k < 0:
        raise ValueError(f"evaluator.retrain.top_k must be >= 0, got {top_k}")
    if top_k == 0:
        return 0, None
    defaults = {key: cfg[key] for key in ("dataset", "data_root", "download", "seed", "device") if key in cfg}
    return top_k, build_evaluator({"name": "scratch", **defaults, **retrain}, space)


def build_budget(budget_cfg: DictConfig | dict, space: SearchSpace) -> Budget:
    budget = Budget(**to_dict(budget_cfg))
    if budget.evaluations is not None and budget.evaluations > space.size:
        raise ValueError(f"budget.evaluations={budget.evaluations} exceeds the {space.size} distinct "
                         f"architectures of search space {space.name!r}")
    return budget


def build_pareto(pareto_cfg: DictConfig | dict | None) -> tuple[ParetoArchive | None, int]:
    """The run's front (None when ``pareto.cost`` is null or the run predates fronts) and how
    many evaluations lie between two drawings of it."""
    settings = to_dict(pareto_cfg) if pareto_cfg is not None else {"cost": None}
    cost, reference, every = settings.get("cost"), settings.get("reference"), settings.get("every", 25)
    if cost is not None and not isinstance(cost, str):
        raise ValueError(f"pareto.cost must be the name of a metric the evaluator reports (params, flops) "
                         f"or null, got {cost!r}")
    if reference is not None and not (isinstance(reference, list | tuple) and len(reference) == 2 and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in reference)):
        raise ValueError(f"pareto.reference must be [score, cost] (two numbers) or null, got {reference!r}")
    check("pareto", {"every": every}, {"every": INT_AT_LEAST_1})
    if cost is None:
        return None, every
    return ParetoArchive(cost, None if reference is None else (float(reference[0]), float(reference[1]))), every


def build_reward(reward_cfg: DictConfig | dict | None) -> Reward:
    """The run's reward (the plain score for runs saved before rewards were a choice)."""
    return make_reward(**to_dict(reward_cfg)) if reward_cfg is not None else Reward()
