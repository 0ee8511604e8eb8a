"""Components by name, one mechanism for every kind. rlnas's own are entry points in its
``pyproject.toml`` exactly as a plugin's are (``docs/plugins.md``)::

    [project.entry-points."rlnas.agents"]
    myagent = "my_package.my_module:MyAgent"

A component is a class with a ``Config`` (:class:`~rlnas.core.settings.Component`), its
Hydra group entry. Nothing is imported before it is asked for, so no layer imports upward.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from rlnas.core.settings import Component


class Registry:
    """The components of one kind, from entry-point group ``rlnas.<kind>s`` and :meth:`register`."""

    def __init__(self, kind: str, group: str):
        self.kind, self.group = kind, group
        self._classes: dict[str, type] = {}
        self._scanned = False

    def register(self, name: str, cls: type | None = None):
        """Make ``cls`` available as ``name`` (usable as a class decorator)."""

        def add(cls: type) -> type:
            config = getattr(cls, "Config", None)
            if not (isinstance(config, type) and issubclass(config, Component)):
                raise TypeError(f"{self.kind} {name!r}: {cls!r} needs a Config, a dataclass subclassing "
                                "rlnas.core.settings.Component that declares its settings")
            if self._classes.get(name, cls) is not cls:
                raise ValueError(f"{self.kind} name {name!r} is already taken by {self._classes[name].__qualname__}")
            cls.name = name
            self._classes[name] = cls
            return cls

        return add if cls is None else add(cls)

    def available(self) -> dict[str, type]:
        """Every component of this kind, by name."""
        if not self._scanned:
            for ep in entry_points(group=self.group):
                if ep.name not in self._classes:
                    self.register(ep.name, ep.load())
            self._scanned = True
        return dict(sorted(self._classes.items()))

    def get(self, name: str) -> type:
        """The component registered as ``name``; an unknown name is refused with what exists."""
        found = self.available()
        if name not in found:
            raise ValueError(f"unknown {self.kind} {name!r}; available {self.kind}s: {', '.join(found)}")
        return found[name]

    def config(self, name: str, values: dict[str, Any] | None = None, preset: str | None = None,
               **overrides: Any) -> Component:
        """``name``'s settings: ``preset``, then ``values``, then ``overrides``, checked."""
        return self.get(name).Config.make(values, preset, **{**overrides, "name": name})


AGENTS = Registry("agent", "rlnas.agents")
SPACES = Registry("search space", "rlnas.spaces")
EVALUATORS = Registry("evaluator", "rlnas.evaluators")
REWARDS = Registry("reward", "rlnas.rewards")
SCHEDULERS = Registry("scheduler", "rlnas.schedulers")
BACKENDS = Registry("backend", "rlnas.backends")
DATASETS = Registry("dataset", "rlnas.datasets")
