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


def test_sb3_ppo_trains_on_an_all_continuous_hyperparameter_env_as_it_is():
    """Every decision a value: the action space is a plain Box in [0, 1], SB3's Gaussian policy's own."""
    from stable_baselines3 import PPO

    from rlnas.evaluators import CallableEvaluator
    from rlnas.spaces.hpo import HPOSpace

    space = HPOSpace({"x": {"_type": "uniform", "_value": [-1, 1]}, "lr": {"_type": "loguniform", "_value": [1e-4, 1]},
                      "n": {"_type": "randint", "_value": [1, 9]}})
    seen = []
    env = NASEnv(space, CallableEvaluator(space, lambda p: seen.append(p) or -p["x"] ** 2))
    model = PPO("MlpPolicy", env, n_steps=48, batch_size=48, seed=0, verbose=0)
    model.learn(total_timesteps=144)
    assert len(seen) == 144 // 3  # one evaluation an episode (SB3 clips its Gaussian's draws to the Box: some repeat)
    assert all(-1 <= p["x"] <= 1 and 1e-4 <= p["lr"] <= 1 and p["n"] in range(1, 9) for p in seen)
    grid = np.geomspace(1e-4, 1, 16)
    assert sum(not np.isclose(grid, p["lr"]).any() for p in seen) > 10  # values between the grid's points
