"""Hydra config groups (agent, env, evaluator), shipped inside the wheel as ``rlnas.conf``."""
