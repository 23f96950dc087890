"""Optional dependencies, imported where they are used, each named with the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from nestvec.errors import MissingExtraError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """`module`, or a MissingExtraError saying `pip install 'nestvec[extra]'` for `purpose`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra, purpose) from exc
