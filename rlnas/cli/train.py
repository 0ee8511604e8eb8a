"""The command line: ``rlnas-train ...`` when installed, ``python train.py ...`` in a checkout.

Every config group entry is a component's ``Config`` (agents with their ``nas`` preset);
Hydra composes and overrides them, and the run checks them as it builds. ``resume=RUN_DIR``
continues a killed run in its own directory.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import sys
import typing
from collections.abc import Sequence

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rlnas.search.config import GROUPS, REGISTRIES, ParetoConfig, RunConfig
from rlnas.search.fail_fast import SystematicFailure
from rlnas.search.runner import load_run_config, run

NAS = "nas"  # the agents' preset train.py uses
PRIMITIVE = re.compile(r"(?i)(true|false|[-+]?(\d[\d_]*)?\.?\d*(e[-+]?\d+)?|[-+]?(inf|nan))")


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``python train.py OVERRIDES...`` runs, composed without running it."""
    register_configs()
    with hydra.initialize_config_module("rlnas.conf", version_base="1.3"):
        return hydra.compose("config", quote_strings(list(overrides)))


def register_configs() -> None:
    """One config group entry per registered component, and the top-level keys' defaults."""
    store = ConfigStore.instance()
    store.store(name="rlnas_run", node={key: value for key, value in RunConfig.node().items() if key not in GROUPS})
    for group, registry in REGISTRIES.items():
        for name, cls in registry.available().items():
            preset = NAS if NAS in cls.Config.PRESETS else None
            store.store(group=group, name=name, node=cls.Config.node(preset, name=name))


def string_keys() -> set[str]:
    """Keys holding strings: what is typed stays text (``evaluator.command=true`` is a command)."""
    keys = {f"pareto.{n}" for n, hint in typing.get_type_hints(ParetoConfig).items() if _holds_str(hint)}
    keys |= {n for n, hint in typing.get_type_hints(RunConfig).items() if _holds_str(hint)}
    for group, registry in REGISTRIES.items():
        for cls in registry.available().values():
            hints = typing.get_type_hints(cls.Config)
            keys |= {f"{group}.{f.name}" for f in dataclasses.fields(cls.Config) if _holds_str(hints[f.name])}
    return keys


def _holds_str(hint: typing.Any) -> bool:
    return hint is str or str in typing.get_args(hint)


def quote_strings(argv: list[str]) -> list[str]:
    """``key=value`` for a string key as ``key='value'``, where Hydra would read a bool or a number."""
    keys, out = string_keys(), []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") in keys and value and PRIMITIVE.fullmatch(value):
            arg = f"{key}='{value}'"
        out.append(arg)
    return out


def redirect_resume_to_its_run_dir(argv: list[str]) -> None:
    """``resume=DIR`` continues in DIR: no new directory, the saved config kept."""
    for arg in argv[1:]:
        if arg.startswith("resume=") and arg != "resume=null":
            argv += [f"hydra.run.dir={arg.split('=', 1)[1]}", "hydra.output_subdir=null"]


@hydra.main(version_base="1.3", config_path="pkg://rlnas.conf", config_name="config")
def _search(cfg: DictConfig) -> None:
    try:
        if cfg.resume:
            saved = load_run_config(cfg.resume)
            saved.quiet, saved.retry_failed = cfg.quiet, cfg.retry_failed
            run(saved, cfg.resume, resume=True)
        else:
            run(cfg, HydraConfig.get().runtime.output_dir)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"rlnas: error: {err}", file=sys.stderr)
        sys.exit(2)
    except SystematicFailure as stop:
        print(f"rlnas: {stop}", file=sys.stderr)
        sys.exit(SystematicFailure.EXIT_CODE)
    except KeyboardInterrupt as stop:  # the runner has said how to resume
        sys.exit(128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT))


class Terminated(KeyboardInterrupt):
    """SIGTERM stops the search as Ctrl-C does: trials taken down, resume command said."""


def _terminate(signum: int, frame) -> None:
    raise Terminated


def main() -> None:
    register_configs()
    sys.argv[1:] = quote_strings(sys.argv[1:])
    redirect_resume_to_its_run_dir(sys.argv)
    signal.signal(signal.SIGTERM, _terminate)
    _search()
