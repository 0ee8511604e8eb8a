"""Checkpoints written atomically, read with ``weights_only=True`` (never code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def save(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load(path: str | Path, map_location: str | torch.device | None = None) -> dict[str, Any]:
    return torch.load(path, weights_only=True, map_location=map_location)
