"""Outside agents plug in: sb3-contrib's MaskablePPO trains on our envs with no adapter."""

import gymnasium as gym
import numpy as np
import pytest

from rlnas.envs import NASEnv
from tests.conftest import op_count_score

sb3_contrib = pytest.importorskip("sb3_contrib")


def test_maskable_ppo_trains_on_nb201():
    env = gym.make("rlnas/NB201-v0")
    model = sb3_contrib.MaskablePPO("MlpPolicy", env, n_steps=512, batch_size=128, seed=0, verbose=0)
    model.learn(total_timesteps=3072)
    assert model.num_timesteps >= 3072
    obs, info = env.reset(seed=0)
    action, _ = model.predict(obs, action_masks=info["action_mask"].astype(bool), deterministic=True)
    assert env.action_space.contains(int(action))


def test_maskable_ppo_respects_nasnet_masks(nasnet):
    # invalid_action="raise": a single illegal action would crash the training loop
    env = NASEnv(nasnet, op_count_score(nasnet))
    model = sb3_contrib.MaskablePPO("MlpPolicy", env, n_steps=256, batch_size=64, seed=0, verbose=0)
    model.learn(total_timesteps=1024)
    obs, info = env.reset(seed=0)
    for _ in range(50):
        action, _ = model.predict(obs, action_masks=env.action_masks().astype(bool))
        assert info["action_mask"][int(action)] == 1
        obs, _, done, _, info = env.step(int(action))
    assert done and np.all(info["action_mask"] == 0)
