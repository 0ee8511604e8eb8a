"""Gymnasium environments of rlnas (registered as ``rlnas/NB201-v0`` and ``rlnas/NASNet-v0``
when :mod:`rlnas` is imported)."""

from rlnas.envs.nas_env import IllegalActionError, NASEnv

__all__ = ["IllegalActionError", "NASEnv"]
