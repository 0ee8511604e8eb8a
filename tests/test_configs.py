"""One declaration per setting: every component's Config dataclass is the config group
entry train.py composes, make_agent builds the agent train.py builds, and every field says
what it is and what it may hold."""

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from rlnas.agents import make_agent
from rlnas.cli.train import compose
from rlnas.core.registry import AGENTS
from rlnas.core.settings import Settings
from rlnas.envs import NASEnv
from rlnas.evaluators.supernet import RetrainConfig
from rlnas.search.build import build
from rlnas.search.config import GROUPS, REGISTRIES, ParetoConfig, RunConfig

ROOT = Path(__file__).resolve().parents[1]
EVERY_CONFIG = sorted({cls.Config for registry in REGISTRIES.values() for cls in registry.available().values()}
                      | {RunConfig, ParetoConfig, RetrainConfig, RunConfig.__dataclass_fields__["budget"]
                         .metadata["nested"]}, key=lambda c: c.__qualname__)


@pytest.mark.parametrize("name", list(AGENTS.available()))
def test_make_agent_and_train_py_build_the_same_agent(name):
    composed = build(compose([f"agent={name}"]))
    made = make_agent(name, NASEnv("nb201", "tabular"))
    assert type(made) is type(composed.agent)
    assert made.config == composed.agent.config


@pytest.mark.parametrize("config", EVERY_CONFIG, ids=lambda c: c.__qualname__)
def test_every_setting_has_a_doc_and_a_type(config):
    hints = typing.get_type_hints(config)
    for field in dataclasses.fields(config):
        assert field.metadata.get("doc", "").strip(), f"{config.__qualname__}.{field.name} has no doc"
        assert field.name in hints and hints[field.name] is not None, f"{config.__qualname__}.{field.name}"
    for name, values in config.PRESETS.items():  # a preset names only settings the class declares
        assert set(values) <= {f.name for f in dataclasses.fields(config)}, (config.__qualname__, name)


def test_the_yaml_holds_only_what_the_code_does_not():
    """conf/ keeps Hydra's own settings and the default of each group; every value is in the code."""
    assert sorted(p.name for p in (ROOT / "conf").iterdir() if p.suffix == ".yaml") == ["config.yaml"]
    config = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())
    assert set(config) == {"defaults", "hydra"}
    assert [next(iter(d)) for d in config["defaults"] if isinstance(d, dict)] == list(GROUPS)


def test_a_plugin_component_becomes_a_config_group_entry(tmp_path):
    """The registry takes any component with a Config; train.py's groups list it."""
    from dataclasses import dataclass

    from rlnas.core.registry import REWARDS
    from rlnas.core.settings import setting
    from rlnas.search.rewards import Reward, RewardConfig

    @dataclass
    class HalfConfig(RewardConfig):
        factor: float = setting(0.5, "what the score is multiplied by")

    class Half(Reward):
        Config = HalfConfig
        metrics = ("params",)

        def __call__(self, score, metrics):
            return self.config.factor * score

    REWARDS.register("half", Half)
    try:
        search = build(compose(["reward=half", "reward.factor=0.25"]))
        assert isinstance(search.reward, Half) and search.reward(0.8, {}) == 0.2
    finally:
        del REWARDS._classes["half"]


def test_settings_refuse_unknown_keys_and_bad_types_by_name():
    with pytest.raises(ValueError, match=r"RunConfig has no setting\(s\) \['paralel'\]; it takes seed, device"):
        RunConfig.make({"paralel": 2})
    with pytest.raises(ValueError, match="config: parallel='2' must be an integer >= 1"):
        RunConfig.make({"parallel": "2", **{group: {} for group in GROUPS}})
    assert issubclass(RunConfig, Settings)
