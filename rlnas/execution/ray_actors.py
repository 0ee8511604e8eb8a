"""Ray actors, one per worker, on a local Ray or a cluster; needs ``rlnas[ray]``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlnas.core.settings import Text, setting
from rlnas.execution.pool import BackendConfig, Pool, answer


@dataclass
class RayConfig(BackendConfig):
    address: str | None = setting(None, "the Ray cluster to join (auto: the one `ray start` made)",
                                  Text("an address", none_means="start a local Ray for this run"))


def start_ray(address: str | None, num_cpus: int | None = None):
    """Ray joined at ``address``, or started here: the module, and whether we started it."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("backend=ray needs Ray: pip install 'rlnas[ray]'") from err
    owns = not ray.is_initialized()
    if owns:
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
    return ray, owns


class _Actor:
    def __init__(self, factory: Callable[[], Any]):
        self.state = factory()

    def call(self, key: str, method: str, args: tuple) -> tuple[str, bool, Any, float]:
        return answer(self.state, key, method, args)


class RayPool(Pool):
    Config = RayConfig

    def __init__(self, factory: Callable[[], Any], workers: int, config: RayConfig | None = None, **kwargs: Any):
        self._ray, self._owns = start_ray((config or RayConfig()).address, num_cpus=workers)
        self._actors: dict[int, Any] = {}
        self._refs: dict[Any, int] = {}
        self._remote = self._ray.remote(num_cpus=1, num_gpus=1 if kwargs.get("gpus") else 0, max_restarts=0)(_Actor)
        super().__init__(factory, workers, config, **kwargs)

    def _start(self, index: int) -> None:
        self._actors[index] = self._remote.remote(self.factory)

    def _send(self, index: int, key: str, method: str, args: tuple) -> None:
        self._refs[self._actors[index].call.remote(key, method, args)] = index

    def _receive(self) -> list[tuple[int, tuple[str, bool, Any, float] | None]]:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        done: list[tuple[int, tuple[str, bool, Any, float] | None]] = []
        for ref in ready:
            index = self._refs.pop(ref)
            try:
                done.append((index, self._ray.get(ref)))
            except self._ray.exceptions.RayError:  # the actor or its node died
                self._ray.kill(self._actors[index])
                done.append((index, None))
        return done

    def _stop(self, busy: set[int]) -> None:
        for actor in self._actors.values():
            self._ray.kill(actor)
        self._actors, self._refs = {}, {}
        if self._owns:
            self._ray.shutdown()
