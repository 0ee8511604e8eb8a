"""Agents on CartPole-v1, where the answer is known, beside Stable-Baselines3 in the same run.

For each algorithm and seed: env steps until the mean return of the last 10 finished
episodes first reaches 475, the mean return of 10 deterministic evaluation episodes at
the end, and wall seconds of training. Our PPO, A2C and DQN run with RL-Zoo's CartPole-v1
hyperparameters and SB3's runs with the very same ones, so "ours / SB3" compares
implementations, not settings. Rainbow and Dreamer have no SB3 counterpart. One torch
thread, CPU.

Dreamer runs stop once they reach 475 (or at the budget): each of its updates imagines
thousands of latent steps and costs about 0.2 s on one CPU thread, so running out 100k
steps after the answer is known would take an hour a seed. Its "final eval" is then taken
at the step where it reached 475.

    python benchmarks/control_sanity.py [--algos ppo a2c dqn rainbow dreamer_v1 dreamer_v2] [--seeds 3] [--no-sb3]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import gymnasium as gym
import numpy as np
import torch

from rlnas.agents import make_agent
from rlnas.core.logger import Logger
from rlnas.core.registry import AGENTS
from rlnas.envs.monitor import Budget, SearchMonitor, VectorSearchMonitor

# Each agent's "cartpole" preset: RL-Zoo's tuned CartPole-v1 settings for PPO, A2C and DQN
# (rl-baselines3-zoo hyperparams/{ppo,a2c,dqn}.yml), the paper's Rainbow (noisy nets explore,
# no epsilon), Dreamer scaled down for a 4-dimensional observation. Here: the budget and envs.
SETTINGS = {"ppo": dict(steps=100_000, n_envs=8), "a2c": dict(steps=500_000, n_envs=8),
            "dqn": dict(steps=50_000, n_envs=1), "rainbow": dict(steps=50_000, n_envs=1),
            "dreamer_v1": dict(steps=100_000, n_envs=1, stop_at_target=True),
            "dreamer_v2": dict(steps=100_000, n_envs=1, stop_at_target=True)}


class Reached(Exception):
    """Raised from the callback to stop a run once it has reached 475."""


class EpisodeReturns(Logger):
    """Keeps (env steps, return) of every finished episode; ignores everything else."""

    def __init__(self):
        self.history: list[tuple[int, float]] = []

    def scalar(self, tag: str, value: float, step: int) -> None:
        if tag == "episode/return":
            self.history.append((step, value))


def first_reach(history: list[tuple[int, float]], threshold: float = 475.0) -> int | None:
    returns = [r for _, r in history]
    for i in range(10, len(history) + 1):
        if np.mean(returns[i - 10:i]) >= threshold:
            return history[i - 1][0]
    return None


def evaluate(act, seed: int, episodes: int = 10) -> float:
    env, total = gym.make("CartPole-v1"), 0.0
    for k in range(episodes):
        obs, _ = env.reset(seed=10_000 + seed * 100 + k)
        done, first = False, True
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs, first))
            total += reward
            done, first = terminated or truncated, False
    return total / episodes


def run_ours(algo: str, seed: int) -> dict:
    cfg = SETTINGS[algo]
    envs = gym.make("CartPole-v1") if algo.startswith("dreamer") else gym.make_vec(
        "CartPole-v1", num_envs=cfg["n_envs"], vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    log = EpisodeReturns()
    monitor = SearchMonitor(envs, logger=log) if algo.startswith("dreamer") else VectorSearchMonitor(envs, logger=log)
    agent = make_agent(algo, monitor, seed=seed, preset="cartpole")

    def stop_at_target(_agent) -> None:
        if cfg.get("stop_at_target") and first_reach(log.history) is not None:
            raise Reached

    start = time.perf_counter()
    with contextlib.suppress(Reached):
        agent.learn(Budget(env_steps=cfg["steps"]), callback=stop_at_target)
    seconds = time.perf_counter() - start
    return {"reach": first_reach(log.history), "seconds": seconds,
            "final": evaluate(lambda o, first: agent.predict(o, deterministic=True, episode_start=first), seed)}


def run_sb3(algo: str, seed: int) -> dict:
    import stable_baselines3 as sb3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    cfg, ours = SETTINGS[algo], vars(AGENTS.get(algo).Config.make(None, "cartpole"))
    envs = make_vec_env("CartPole-v1", n_envs=cfg["n_envs"], seed=seed)
    history: list[tuple[int, float]] = []

    class Episodes(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    history.append((self.num_timesteps, info["episode"]["r"]))
            return True

    def linear(value):
        return lambda progress_remaining: progress_remaining * value

    if algo == "ppo":
        model = sb3.PPO("MlpPolicy", envs, n_steps=ours["n_steps"], batch_size=ours["batch_size"],
                        gae_lambda=ours["gae_lambda"], gamma=ours["gamma"], n_epochs=ours["n_epochs"],
                        ent_coef=0.0, learning_rate=linear(ours["learning_rate"]),
                        clip_range=linear(ours["clip_range"]), seed=seed, device="cpu")
    elif algo == "a2c":
        model = sb3.A2C("MlpPolicy", envs, ent_coef=0.0, seed=seed, device="cpu")
    else:
        model = sb3.DQN("MlpPolicy", envs, learning_rate=ours["learning_rate"], batch_size=ours["batch_size"],
                        buffer_size=ours["buffer_size"], learning_starts=ours["learning_starts"],
                        gamma=ours["gamma"], target_update_interval=ours["target_update_interval"],
                        train_freq=ours["train_freq"], gradient_steps=ours["gradient_steps"],
                        exploration_fraction=ours["exploration_fraction"],
                        exploration_final_eps=ours["exploration_final_eps"],
                        policy_kwargs=dict(net_arch=[256, 256]), seed=seed, device="cpu")
    start = time.perf_counter()
    model.learn(total_timesteps=cfg["steps"], callback=Episodes())
    seconds = time.perf_counter() - start
    return {"reach": first_reach(history), "final": evaluate(lambda o, _: int(model.predict(o, deterministic=True)[0]),
                                                             seed), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="*", default=list(SETTINGS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--no-sb3", action="store_true", help="skip the Stable-Baselines3 runs")
    args = parser.parse_args()
    torch.set_num_threads(1)

    def fmt_reach(rows):
        reached = [r["reach"] for r in rows]
        ok = [x for x in reached if x is not None]
        return (f"{len(ok)}/{len(rows)}" + (f", {np.mean(ok) / 1000:.1f}k mean ({min(ok) / 1000:.1f}k-"
                                             f"{max(ok) / 1000:.1f}k)" if ok else ""))

    print("| algorithm | impl. | budget | seeds reaching 475 (steps) | final eval return | wall s | "
          "ours / SB3 wall |")
    print("|---|---|---:|---|---:|---:|---:|")
    for algo in args.algos:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        ours = [run_ours(algo, seed) for seed in seeds]
        runs = {"rlnas": ours}
        if algo in ("ppo", "a2c", "dqn") and not args.no_sb3:
            runs["SB3"] = [run_sb3(algo, seed) for seed in seeds]
        for impl, rows in runs.items():
            wall = np.mean([r["seconds"] for r in rows])
            ratio = ""
            if impl == "rlnas" and "SB3" in runs:
                ratio = f"{wall / np.mean([r['seconds'] for r in runs['SB3']]):.2f}"
            print(f"| {algo} | {impl} | {SETTINGS[algo]['steps'] // 1000}k | {fmt_reach(rows)} | "
                  f"{np.mean([r['final'] for r in rows]):.1f} | {wall:.1f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
