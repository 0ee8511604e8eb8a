"""The command line: ``rlnas-train agent=ppo env=nb201 ...`` when installed, ``python train.py ...``
in a checkout; both are this module's :func:`main`.

Config groups ship inside the package (``rlnas.conf``, the checkout's ``conf/``), so an
installed rlnas runs from any directory. ``resume=RUN_DIR`` continues a killed run in its
own directory. Agents installed by other packages under the ``rlnas.agents`` entry-point
group are selectable by name like the built-ins.
"""

from __future__ import annotations

import signal
import sys

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rlnas.agents.registry import available_agents, hyperparameters
from rlnas.config import CONF
from rlnas.runner import load_run_config, run


def register_plugin_agents() -> None:
    """Give every agent without a YAML file in conf/agent a config group entry made from
    its constructor's defaults, so ``agent=<plugin>`` composes like a built-in."""
    shipped = {p.name.removesuffix(".yaml") for p in (CONF / "agent").iterdir() if p.name.endswith(".yaml")}
    store = ConfigStore.instance()
    for name, cls in available_agents().items():
        if name not in shipped:
            store.store(group="agent", name=name, node={"name": name, **hyperparameters(cls)})


def redirect_resume_to_its_run_dir(argv: list[str]) -> None:
    """``resume=DIR`` continues in DIR: Hydra must neither make a new directory nor
    overwrite the run's saved config."""
    for arg in argv[1:]:
        if arg.startswith("resume=") and arg != "resume=null":
            argv += [f"hydra.run.dir={arg.split('=', 1)[1]}", "hydra.output_subdir=null"]


@hydra.main(version_base="1.3", config_path="pkg://rlnas.conf", config_name="config")
def _search(cfg: DictConfig) -> None:
    try:
        if cfg.resume:
            saved = load_run_config(cfg.resume)
            saved.quiet = cfg.quiet
            run(saved, cfg.resume, resume=True)
        else:
            run(cfg, HydraConfig.get().runtime.output_dir)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"rlnas: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as stop:  # the runner has said how to resume
        sys.exit(128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT))


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a cluster cancelling the job) stops the search as Ctrl-C does:
    the trials running are taken down, and the run says how to resume."""


def _terminate(signum: int, frame) -> None:
    raise Terminated


def main() -> None:
    register_plugin_agents()
    redirect_resume_to_its_run_dir(sys.argv)
    signal.signal(signal.SIGTERM, _terminate)
    _search()
