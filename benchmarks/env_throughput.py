"""Env steps per second: rlnas's NAS envs beside gymnasium's CartPole-v1, same machine, same run.

Each env is made with ``gymnasium.make`` (so the same checker wrappers apply), actions are
drawn before timing, and evaluators are the cheap ones: the NAS-Bench-201 table, and the
SQLite evaluation store answering architectures it already holds ("cached"). NASNet has
no table, so its rows use the store alone, pre-filled by a first untimed pass.

    python benchmarks/env_throughput.py [--steps 60000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import rlnas  # noqa: F401  (registers the envs)
from rlnas.evaluators import CallableEvaluator, TabularEvaluator
from rlnas.spaces import make_space


def episodes_of_actions(space, n_archs: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [a for _ in range(n_archs) for a in space.sample(rng)]


def steps_per_second(env: gym.Env, actions: list[int], steps: int) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60_000)
    args = parser.parse_args()

    rows = []
    cartpole = gym.make("CartPole-v1")
    cartpole.action_space.seed(0)
    cp_actions = [int(cartpole.action_space.sample()) for _ in range(10_000)]
    cp_rate = steps_per_second(cartpole, cp_actions, args.steps)
    rows.append(("CartPole-v1", "-", cp_rate))

    nb201 = make_space("nb201")
    nb_actions = episodes_of_actions(nb201, 2_000, seed=0)
    rows.append(("rlnas/NB201-v0", "tabular", steps_per_second(
        gym.make("rlnas/NB201-v0", evaluator=TabularEvaluator()), nb_actions, args.steps)))

    with tempfile.TemporaryDirectory() as tmp:
        for env_id, space, evaluator in (
            ("rlnas/NB201-v0", nb201, TabularEvaluator()),
            ("rlnas/NASNet-v0", make_space("nasnet"),
             CallableEvaluator(make_space("nasnet"), lambda arch: 0.0, label="zero")),
        ):
            actions = episodes_of_actions(space, 500, seed=1)
            env = gym.make(env_id, evaluator=evaluator, store=Path(tmp) / f"{space.name}.sqlite")
            steps_per_second(env, actions, len(actions))  # fill the store (untimed)
            rows.append((env_id, "cached (store hits)", steps_per_second(env, actions, args.steps)))

    print(f"{'env':<18} {'evaluator':<22} {'steps/s':>10} {'us/step':>9} {'x CartPole cost':>16}")
    for env_id, evaluator, rate in rows:
        print(f"{env_id:<18} {evaluator:<22} {rate:>10,.0f} {1e6 / rate:>9.1f} {cp_rate / rate:>16.2f}")


if __name__ == "__main__":
    main()
