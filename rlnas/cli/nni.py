"""An NNI experiment config (``nnictl create --config config.yml``) run as an rlnas search.

Reads NNI's v2 keys or the v1 names and turns them into ``train.py`` overrides: the space
as ``env=hpo``, the trial command as ``evaluator=trial``, the tuner as an agent, the
assessor as a scheduler, the limits as the budget. What has no counterpart is refused by
name or reported as not carried over: nothing is dropped silently.

    rlnas-nni config.yml [key=value ...]   # run it; overrides given here win
    rlnas-nni config.yml --print           # print the rlnas-train command instead
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from rlnas.core.settings import Range, check
from rlnas.evaluators.base import OPTIMIZE_MODES
from rlnas.evaluators.trial import files_made_absolute

TUNERS = {"TPE": "tpe", "Random": "random", "Evolution": "evolution"}  # NNI's builtin name -> agent
ADVISORS = {"Hyperband": "random", "BOHB": "tpe"}  # sampled configurations, halved by the scheduler
ASSESSORS = ("Medianstop",)
NOT_CARRIED = {  # NNI keys with no counterpart that change nothing about which trials run
    "experimentName": "name the run with hydra.run.dir=...",
    "maxExperimentDuration": "the search stops at budget.evaluations; stop it yourself and resume=RUN_DIR later",
    "logLevel": "", "debug": "", "nniManagerIp": "", "experimentWorkingDirectory": "the run directory holds it all",
    "tunerGpuIndices": "", "useActiveGpu": "", "gpuIndices": "set CUDA_VISIBLE_DEVICES before the run",
    "maxTrialNumberPerGpu": "", "authorName": "", "multiThread": "", "multiPhase": "",
}
V1_NAMES = {"searchSpacePath": "searchSpaceFile", "maxTrialNum": "maxTrialNumber",
            "maxExecDuration": "maxExperimentDuration"}
V2_KEYS = {"searchSpaceFile", "searchSpace", "trialCommand", "trialCodeDirectory", "trialConcurrency",
           "trialGpuNumber", "maxTrialNumber", "maxTrialDuration", "tuner", "assessor", "advisor",
           "trainingService", "useAnnotation", *NOT_CARRIED}
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def load(path: str | Path) -> dict[str, Any]:
    """The experiment config at ``path``, with v1 names read as their v2 keys."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"NNI experiment config {str(path)!r} not found") from err
    except yaml.YAMLError as err:
        raise ValueError(f"NNI experiment config {str(path)!r} is not YAML: {err}") from err
    if not isinstance(config, dict):
        raise ValueError(f"NNI experiment config {str(path)!r} must be a mapping of keys, got {type(config).__name__}")
    config = {V1_NAMES.get(key, key): value for key, value in config.items()}
    trial = config.pop("trial", None)  # v1: trial: {command, codeDir, gpuNum}
    if isinstance(trial, dict):
        config.update({new: trial[old] for old, new in (("command", "trialCommand"), ("codeDir", "trialCodeDirectory"),
                                                        ("gpuNum", "trialGpuNumber")) if old in trial})
    if "trainingServicePlatform" in config:  # v1
        config["trainingService"] = {"platform": config.pop("trainingServicePlatform")}
    for role in ("tuner", "assessor", "advisor"):  # v1: builtinTunerName, ...
        algorithm = config.get(role)
        if isinstance(algorithm, dict):
            old = f"builtin{role.capitalize()}Name"
            if old in algorithm:
                config[role] = {"name": algorithm[old], **{k: v for k, v in algorithm.items() if k != old}}
    return config


class Translation:
    """The ``train.py`` arguments an experiment config becomes, and a line per key saying what
    became of it: used (as what), not carried over (why), or a note."""

    def __init__(self, config: Mapping[str, Any]):
        self.config, self.args, self.lines = config, [], []

    def use(self, key: str, *args: str, shown: Any = None) -> None:
        self.args.extend(args)
        value = config_value(self.config, key) if shown is None else shown
        self.lines.append(f"{key}: {value} -> {' '.join(args)}" if args else f"{key}: {value}, as rlnas does already")


def config_value(config: Mapping[str, Any], key: str) -> str:
    """A key's value as a line shows it: a tuner, advisor or assessor by its name."""
    value = config[key]
    return value.get("name", value) if isinstance(value, dict) else repr(value)


def overrides(config: Mapping[str, Any], base: Path) -> tuple[list[str], list[str]]:
    """The ``train.py`` overrides for ``config`` (paths relative to ``base``, as NNI's), and
    what became of each key, one line each."""
    unknown = sorted(set(config) - V2_KEYS)
    if unknown:
        raise ValueError(f"NNI experiment config: unknown key(s) {unknown}; rlnas reads {sorted(V2_KEYS)}")
    if config.get("useAnnotation"):
        raise ValueError("NNI experiment config: useAnnotation has no rlnas counterpart; write the search space "
                         "as a file (searchSpaceFile) and call rlnas.trial.get_next_parameter() in the script")
    _local_only(config.get("trainingService"))
    out = Translation(config)
    space = "searchSpaceFile" if "searchSpaceFile" in config else "searchSpace"
    out.use(space, "env=hpo", f"env.search_space={_quoted(str(_search_space(config, base)))}",
            shown="(inline)" if space == "searchSpace" else None)
    out.use("trialCommand", "evaluator=trial", f"evaluator.command={_quoted(_command(config, base))}")
    _algorithms_used(config, out)
    if config.get("trialConcurrency") is not None:
        parallel = _count("trialConcurrency", config["trialConcurrency"])
        out.use("trialConcurrency", *([f"parallel={parallel}"] if parallel > 1 else []))
    if config.get("maxTrialNumber") is not None:
        out.use("maxTrialNumber", f"budget.evaluations={_count('maxTrialNumber', config['maxTrialNumber'])}")
    if config.get("maxTrialDuration") is not None:
        out.use("maxTrialDuration", f"evaluator.timeout={_seconds('maxTrialDuration', config['maxTrialDuration']):g}")
    gpus = _count("trialGpuNumber", config.get("trialGpuNumber") or 0, low=0)
    if gpus:  # each worker, and the trial it runs, is pinned to one GPU
        out.use("trialGpuNumber", "device=cuda")
    if config.get("trainingService") is not None:
        out.use("trainingService", shown="local (trials on this machine)")
    out.lines += [f"{key} ({config[key]!r}) is not carried over" + (f": {why}" if why else "")
                  for key, why in NOT_CARRIED.items() if config.get(key) is not None]
    if config.get("maxTrialNumber") is None:
        out.lines.append("no maxTrialNumber: the search stops at budget.evaluations (200 unless you set it)")
    if gpus > 1:
        out.lines.append(f"trialGpuNumber={gpus}: rlnas gives each trial one GPU")
    out.lines.append("trials run in RUN_DIR/trials/<id>, not in trialCodeDirectory: a script that opens files "
                     "beside itself should find them from Path(__file__).parent")
    return out.args, out.lines


def _algorithms_used(config: Mapping[str, Any], out: Translation) -> None:
    """The tuner (or advisor) as an agent, with its optimize_mode and seed; the early-stopping
    rule as a scheduler, on the assessor's line (an advisor's own, on the advisor's)."""
    agent, rule, mode = _algorithms(config)
    role = "tuner" if config.get("tuner") else "advisor"
    seed = _class_args(config[role]).get("seed")
    args = [f"agent={agent}", *(["evaluator.optimize_mode=minimize"] if mode == "minimize" else []),
            *([] if seed is None else [f"seed={_count('seed', seed, low=0)}"])]
    schedule = [] if rule is None else [f"scheduler={rule['name']}",
                                        *(f"scheduler.{k}={v}" for k, v in rule.items() if k != "name")]
    if config.get("assessor"):
        out.use(role, *args)
        out.use("assessor", *schedule)
    else:
        out.use(role, *args, *schedule)


def _quoted(value: str) -> str:
    """``value`` as Hydra's override grammar reads it verbatim: bare, or quoted."""
    if re.fullmatch(r"[\w ./:+@%-]+", value) and value == value.strip():
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _local_only(service: Any) -> None:
    platform = service.get("platform") if isinstance(service, dict) else service
    if service is not None and platform != "local":
        raise ValueError(f"NNI experiment config: trainingService {service!r}: rlnas runs trials on this machine "
                         "(platform: local), or on a Ray cluster with backend=ray backend.address=auto")


def _search_space(config: Mapping[str, Any], base: Path) -> Path:
    if "searchSpaceFile" in config:
        if "searchSpace" in config:
            raise ValueError("NNI experiment config: give searchSpaceFile or searchSpace, not both")
        return (base / str(config["searchSpaceFile"])).expanduser().absolute()
    if not isinstance(config.get("searchSpace"), dict):
        raise ValueError("NNI experiment config: no search space; set searchSpaceFile (a .json or .yaml file) "
                         "or searchSpace (the space itself)")
    path = base / "search_space.from_nni_config.json"  # a file, so the run's saved config can be resumed
    path.write_text(json.dumps(config["searchSpace"], indent=1) + "\n")
    return path.absolute()


def _command(config: Mapping[str, Any], base: Path) -> str:
    command = config.get("trialCommand")
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"NNI experiment config: trialCommand={command!r} must be the shell command of a trial")
    code = (base / str(config.get("trialCodeDirectory") or ".")).expanduser()
    if not code.is_dir():
        raise ValueError(f"NNI experiment config: trialCodeDirectory {str(code)!r} is not a folder")
    return shlex.join(files_made_absolute(command, code))


def _algorithms(config: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None, str]:
    """The agent, scheduler and optimize_mode the tuner, advisor and assessor ask for."""
    tuner, advisor, assessor = (config.get(role) or {} for role in ("tuner", "advisor", "assessor"))
    if bool(tuner) == bool(advisor):
        raise ValueError("NNI experiment config: set a tuner or an advisor (one of them)")
    if tuner:
        if tuner.get("name") not in TUNERS:
            raise ValueError(f"NNI experiment config: tuner {tuner.get('name')!r} has no rlnas counterpart; one of "
                             f"{sorted(TUNERS)}, or any rlnas agent given as agent=NAME after the config")
        agent, rule = TUNERS[tuner["name"]], None
    else:
        if advisor.get("name") not in ADVISORS:
            raise ValueError(f"NNI experiment config: advisor {advisor.get('name')!r} has no rlnas counterpart; "
                             f"one of {sorted(ADVISORS)}")
        if assessor:
            raise ValueError("NNI experiment config: an advisor decides its own early stopping; drop the assessor")
        eta = _count("eta", _class_args(advisor).get("eta", 3), low=2)
        agent, rule = ADVISORS[advisor["name"]], {"name": "hyperband", "min_resource": 1, "eta": eta}
    if assessor:
        if assessor.get("name") not in ASSESSORS:
            raise ValueError(f"NNI experiment config: assessor {assessor.get('name')!r} has no rlnas counterpart; "
                             f"one of {list(ASSESSORS)}, or an advisor: Hyperband")
        start = _count("start_step", _class_args(assessor).get("start_step", 0), low=0)
        rule = {"name": "median", "start_step": max(1, start)}  # NNI's 0 and 1 both judge from the first report
    modes = {_class_args(algorithm).get("optimize_mode", "maximize") for algorithm in (tuner, advisor, assessor)
             if algorithm}
    if len(modes) > 1 or not modes <= set(OPTIMIZE_MODES):
        raise ValueError(f"NNI experiment config: optimize_mode {sorted(modes)}: the tuner (or advisor) and the "
                         "assessor must agree, on 'maximize' or 'minimize'")
    return agent, rule, modes.pop()


def _class_args(algorithm: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (algorithm or {}).get("classArgs") or {}


def _count(key: str, value: Any, low: int = 1) -> int:
    check("NNI experiment config", {key: value}, {key: Range(low, integer=True)})
    return value


def _seconds(key: str, value: Any) -> float:
    """NNI's durations: a number and a unit (``30s``, ``10m``, ``1.5h``, ``2d``), or seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", str(value))
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"NNI experiment config: {key}={value!r} must be a duration such as '30s', '10m', '1h' or "
                         "'2d'")
    return float(match[1]) * SECONDS[match[2]]


def command(config_path: str | Path, extra: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """``rlnas-train``'s arguments for the experiment (``extra`` win for the keys they set), and notes."""
    path = Path(config_path)
    args, notes = overrides(load(path), path.parent)
    mine = {arg.split("=", 1)[0].lstrip("+~") for arg in extra}
    return [arg for arg in args if arg.split("=", 1)[0] not in mine] + list(extra), notes


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    show = "--print" in argv
    argv = [arg for arg in argv if arg != "--print"]
    if not argv or argv[0].startswith("-") or "=" in argv[0]:
        print(__doc__.split("\n\n")[-1].rstrip(), file=sys.stderr)
        sys.exit(2)
    try:
        args, notes = command(argv[0], argv[1:])
    except (ValueError, FileNotFoundError) as err:
        print(f"rlnas-nni: error: {err}", file=sys.stderr)
        sys.exit(2)
    for line in notes:
        print(f"rlnas-nni: {line}", file=sys.stderr)
    if show:
        print(shlex.join(["rlnas-train", *args]))
        return
    from rlnas.cli import train

    sys.argv = ["rlnas-train", *args]
    train.main()


if __name__ == "__main__":
    main()
