"""Gymnasium environments of rlnas (registered as ``rlnas/NB201-v0``, ``rlnas/NASNet-v0``
and ``rlnas/HPO-v0`` when :mod:`rlnas` is imported), and the monitor that counts what a
search spends."""

from rlnas.envs.monitor import Budget, SearchMonitor, VectorSearchMonitor
from rlnas.envs.nas_env import IllegalActionError, NASEnv

__all__ = ["Budget", "IllegalActionError", "NASEnv", "SearchMonitor", "VectorSearchMonitor"]
