"""Every setting is checked when its config is made, before anything is built, and the
message says which key is wrong and what it may be."""

import gymnasium as gym
import pytest

import rlnas  # noqa: F401  (registers the envs)
from rlnas.agents import make_agent
from rlnas.core.settings import POSITIVE, UNIT, OneOf, Range, Sizes, check


def test_range_membership_and_wording():
    assert UNIT.allows(0) and UNIT.allows(1.0) and not UNIT.allows(1.5) and not UNIT.allows(None)
    assert not POSITIVE.allows(0) and POSITIVE.allows(1e-9)
    assert not POSITIVE.allows(True) and not POSITIVE.allows("0.1")  # bools and strings are not numbers
    steps = Range(1, 8, integer=True, high_name="n_steps * num_envs")
    assert steps.allows(8) and not steps.allows(9) and not steps.allows(2.0)
    assert str(steps) == "an integer in [1, n_steps * num_envs = 8]"
    assert str(Range(0, 1, high_open=True)) == "a number in [0, 1)"
    # a bound from another key that is not a number is left out (that key's own range says so)
    assert Range(1, None, integer=True).allows(5) and Range(1, "lots", integer=True, high_name="n").allows(5)
    assert str(Range(1, "lots", integer=True, high_name="n")) == "an integer >= 1"
    assert str(Range(0, low_open=True, optional=True, none_means="off")) == "a number > 0, or null (off)"
    assert OneOf((1, 2)).allows(2) and not OneOf((1, 2)).allows(2.0) and not OneOf(("mlp",)).allows("MLP")
    assert Sizes().allows([64, 64]) and Sizes().allows((8,)) and not Sizes().allows([]) and not Sizes().allows([0])
    with pytest.raises(ValueError, match=r"^x: a=2 must be a number in \[0, 1\]; b='c' must be one of 'd'$"):
        check("x", {"a": 2, "b": "c", "e": 0}, {"a": UNIT, "b": OneOf(("d",))})


@pytest.mark.parametrize("agent, hparams, message", [
    ("dreamer_v2", {"horizon": 0}, "dreamer_v2: horizon=0 must be an integer >= 1"),
    ("dreamer_v2", {"kl_balance": 1.5}, "kl_balance=1.5 must be a number in [0, 1], or null (no balancing"),
    ("dreamer_v2", {"updates_per_evaluation": 0}, "updates_per_evaluation=0 must be an integer >= 1, or null"),
    ("dreamer_v1", {"stoch_size": 0}, "dreamer_v1: stoch_size=0 must be an integer >= 1"),
    ("dreamer_v1", {"version": 1}, "dreamer_v1 has no setting(s) ['version']; it takes latent, deter_size"),
    ("dreamer_v1", {"latent": "beta", "gamma": 2.0}, "latent='beta' must be one of 'gaussian', 'categorical'; "
                                                   "gamma=2.0 must be a number in [0, 1]"),
    ("ppo", {"n_steps": 4, "batch_size": 5}, "ppo: batch_size=5 must be an integer in [1, n_steps * num_envs = 4]"),
    ("ppo", {"clip_range_vf": 0.0}, "clip_range_vf=0.0 must be a number > 0, or null (no value clipping)"),
    ("ppo", {"policy": "gru"}, "policy='gru' must be one of 'mlp', 'lstm'"),
    ("a2c", {"hidden_sizes": []}, "a2c: hidden_sizes=[] must be a non-empty list of integers >= 1"),
    ("a2c", {"gae_lambda": -0.1}, "gae_lambda=-0.1 must be a number in [0, 1]"),
    ("dqn", {"buffer_size": 10, "batch_size": 64}, "dqn: batch_size=64 must be an integer in [1, buffer_size = 10]"),
    ("dqn", {"exploration_final_eps": 1.2}, "exploration_final_eps=1.2 must be a number in [0, 1]"),
    ("rainbow", {"v_min": 1.0, "v_max": 1.0}, "rainbow: v_max=1.0 must be a number > v_min = 1"),
    ("rainbow", {"n_atoms": 1}, "n_atoms=1 must be an integer >= 2"),
    ("reinforce", {"baseline_decay": 1.0}, "reinforce: baseline_decay=1.0 must be a number in [0, 1)"),
    ("reinforce", {"learning_rate": 0}, "learning_rate=0 must be a number > 0"),
    ("evolution", {"sample_size": 11}, "evolution: sample_size=11 must be an integer in [1, population_size = 10]"),
    ("evolution", {"population_size": 0}, "population_size=0 must be an integer >= 1"),
    ("random", {"seed": -1}, "random: seed=-1 must be an integer >= 0"),
    ("local_search", {"n_init": 0}, "local_search: n_init=0 must be an integer >= 1"),
    ("tpe", {"n_startup_trials": 0}, "tpe: n_startup_trials=0 must be an integer >= 1"),
    ("planner", {"noise": 0.0}, "planner: noise=0.0 must be a number > 0"),
    ("planner", {"floor_quantile": 1.5}, "floor_quantile=1.5 must be a number in [0, 1]"),
])
def test_each_agent_refuses_a_value_out_of_range(agent, hparams, message):
    with pytest.raises(ValueError) as err:
        make_agent(agent, gym.make("rlnas/NB201-v0"), **hparams, preset=None)
    assert message in str(err.value)


@pytest.mark.parametrize("agent", ["ppo", "a2c", "dqn", "rainbow", "reinforce", "evolution", "random", "dreamer_v1",
                                   "dreamer_v2", "local_search", "tpe", "planner"])
def test_every_agent_accepts_its_defaults_and_its_presets(agent):
    env = gym.make("rlnas/NB201-v0")
    for preset in (None, "nas"):
        assert make_agent(agent, env, preset=preset).config.name == agent
    config = type(make_agent(agent, env, preset=None).config)
    for preset in config.PRESETS:  # each a valid config (cartpole's for CartPole's vector envs)
        assert config.make(None, preset, name=agent).name == agent


def test_a_setting_without_a_range_is_checked_by_its_type():
    from rlnas.spaces import SpaceConfig

    with pytest.raises(ValueError, match="invalid_penalty='low' must be a number"):
        SpaceConfig(invalid_penalty="low")
    with pytest.raises(ValueError, match="has no preset 'atari'; presets: nas, cartpole"):
        make_agent("ppo", gym.make("rlnas/NB201-v0"), preset="atari")
