"""The user's code by import path: ``"package.module:function"``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def import_callable(path: str, what: str = "evaluator function") -> Callable[..., Any]:
    """The function at ``"package.module:function"``, or ``ValueError`` saying why not."""
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ValueError(f"{what} {path!r} must be an import path 'package.module:function'")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import {what} {path!r}: {err}") from err
    if not callable(fn):
        raise ValueError(f"{what} {path!r} is not callable")
    return fn
