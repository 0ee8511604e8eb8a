import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnas.envs import IllegalActionError, NASEnv
from tests.conftest import op_count_score


def random_episode(env, rng):
    obs, info = env.reset(seed=int(rng.integers(1 << 30)))
    rewards, done = [], False
    while not done:
        assert env.observation_space.contains(obs)
        action = rng.choice(np.flatnonzero(info["action_mask"]))
        obs, reward, done, truncated, info = env.step(action)
        assert not truncated
        rewards.append(reward)
    return rewards, info


def test_nb201_episode_pays_table_score_at_the_end():
    env = gym.make("rlnas/NB201-v0")
    obs, info = env.reset(seed=0)
    assert obs.shape == (6 * 5 + 6 + 1,) and obs[30] == 1.0 and obs.sum() == 1.0
    rewards = []
    for action in (3, 3, 3, 1, 2, 3):
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
    assert rewards[:5] == [0.0] * 5 and terminated and not truncated
    assert rewards[-1] == pytest.approx(0.84892)
    assert info["arch"] == ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                            "nor_conv_1x1~1|nor_conv_3x3~2|")
    assert info["metrics"]["test_acc"] == pytest.approx(0.8903)
    # observation: one-hot per decision, then the cursor at "done"
    expected = np.zeros(37, np.float32)
    for i, a in enumerate((3, 3, 3, 1, 2, 3)):
        expected[i * 5 + a] = 1.0
    expected[36] = 1.0
    np.testing.assert_array_equal(obs, expected)
    np.testing.assert_array_equal(info["action_mask"], np.zeros(5, np.int8))


def test_nasnet_random_legal_episodes(cheap_nasnet_evaluator):
    env = NASEnv("nasnet", cheap_nasnet_evaluator)
    rng = np.random.default_rng(0)
    for _ in range(20):
        rewards, info = random_episode(env, rng)
        assert len(rewards) == 50 and all(r == 0.0 for r in rewards[:-1])
        assert rewards[-1] == pytest.approx(cheap_nasnet_evaluator.evaluate(info["arch"]).score)


def test_masks_follow_the_space(nasnet, cheap_nasnet_evaluator):
    env = NASEnv(nasnet, cheap_nasnet_evaluator)
    _, info = env.reset(seed=0)
    for step in range(50):
        legal = nasnet.legal_choices(env.unwrapped.decisions)
        expected = np.zeros(6, np.int8)
        expected[list(legal)] = 1
        np.testing.assert_array_equal(info["action_mask"], expected)
        np.testing.assert_array_equal(env.action_masks(), expected)
        assert info["action_mask"].dtype == np.int8
        _, _, _, _, info = env.step(legal[-1])
        assert len(env.decisions) == step + 1


def without_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn(*args, **kwargs)


@pytest.mark.parametrize("env_id, kwargs", [
    ("rlnas/NB201-v0", {}),
    ("rlnas/NB201-v0", {"render_mode": "ansi"}),
    # check_env samples actions without masks, so on NASNet it needs the penalize mode
    ("rlnas/NASNet-v0", {"invalid_action": "penalize"}),
])
def test_check_env_passes_without_warnings(env_id, kwargs):
    without_warnings(check_env, gym.make(env_id, **kwargs).unwrapped)


def test_illegal_action_raises_naming_legal_choices(cheap_nasnet_evaluator):
    env = NASEnv("nasnet", cheap_nasnet_evaluator)
    env.reset(seed=0)
    with pytest.raises(IllegalActionError, match=r"illegal choice 5 for decision 0 .*legal choices are "
                                                 r"0=h\[-2\], 1=h\[-1\]"):
        env.step(5)
    env.step(1)  # the env is still usable after a refused action
    assert env.decisions == (1,)


def test_penalize_mode_ends_episode(cheap_nasnet_evaluator):
    env = NASEnv("nasnet", cheap_nasnet_evaluator, invalid_action="penalize", invalid_penalty=-0.5)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(4)
    assert reward == -0.5 and terminated and info["illegal_action"]
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)


def test_bad_env_arguments(cheap_nasnet_evaluator):
    with pytest.raises(ValueError, match="invalid_action must be 'raise' or 'penalize'"):
        NASEnv(invalid_action="ignore")
    with pytest.raises(ValueError, match="evaluator scores space"):
        NASEnv("nb201", cheap_nasnet_evaluator)
    with pytest.raises(ValueError, match="tabular evaluator scores NAS-Bench-201 cells only"):
        NASEnv("nasnet", "tabular")
    with pytest.raises(ValueError, match="unknown evaluator 'oracle'; available evaluators: function, nats"):
        NASEnv("nb201", "oracle")


def test_render_lists_decisions():
    env = gym.make("rlnas/NB201-v0", render_mode="ansi")
    env.reset(seed=0)
    env.step(3)
    assert env.render() == "edge 0->1: nor_conv_3x3"


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vector_envs(vector_cls):
    envs = vector_cls([lambda: gym.make("rlnas/NB201-v0") for _ in range(2)])
    try:
        obs, info = envs.reset(seed=[1, 2])
        assert obs.shape == (2, 37) and info["action_mask"].shape == (2, 5)
        finished = 0
        for t in range(20):
            obs, rewards, terminated, _, info = envs.step(np.array([t % 5, (t + 2) % 5]))
            if terminated.any():
                assert terminated.all() and (rewards > 0.05).all()
                assert all(isinstance(a, str) and a.startswith("|") for a in info["arch"])
                finished += 1
        assert finished == 3  # 6 decisions + 1 auto-reset step per episode (next-step mode)
    finally:
        envs.close()


def test_same_seed_same_observations():
    def rollout(seed):
        env = gym.make("rlnas/NB201-v0")
        rng = np.random.default_rng(seed)
        return [random_episode(env, rng)[1]["arch"] for _ in range(5)]

    assert rollout(3) == rollout(3)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=-2, max_value=8), min_size=1, max_size=60))
def test_arbitrary_action_sequences(nasnet, actions):
    """Legal actions advance, illegal ones raise and change nothing, episodes end at 50."""
    env = NASEnv(nasnet, op_count_score(nasnet))
    obs, info = env.reset(seed=0)
    for action in actions:
        before = env.decisions
        legal = nasnet.legal_choices(before)
        if action in legal:
            obs, _, terminated, _, info = env.step(action)
            assert env.decisions == (*before, action)
            assert env.observation_space.contains(obs)
            if terminated:
                assert len(env.decisions) == 50
                obs, info = env.reset()
        else:
            with pytest.raises(IllegalActionError):
                env.step(action)
            assert env.decisions == before
            assert info["action_mask"][action] == 0 if 0 <= action < 6 else True


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=60))
def test_arbitrary_actions_in_penalize_mode(nasnet, actions):
    env = NASEnv(nasnet, op_count_score(nasnet), invalid_action="penalize")
    env.reset(seed=0)
    for action in actions:
        legal = action in nasnet.legal_choices(env.decisions)
        _, reward, terminated, _, info = env.step(action)
        if not legal:
            assert terminated and reward == -1.0 and info["illegal_action"]
        if terminated:
            env.reset()
