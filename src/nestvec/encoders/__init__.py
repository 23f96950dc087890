"""Encoders: text -> float32 vectors. `load_encoder` resolves a model name or folder.

Names are imported on first use (PEP 562): the recipe's fields read `spec` alone, and
`nestvec --help` must not pay for numpy and the loaders.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nestvec.encoders.base import Encoder
    from nestvec.encoders.cache import CachedEncoder, EmbeddingCache
    from nestvec.encoders.identity import ModelIdentity
    from nestvec.encoders.loading import NAMED_MODELS, canonical_name, encoder_for, load_encoder, resolve_model
    from nestvec.encoders.spec import BACKENDS, COMPUTES, DEFAULT_MODEL, EncoderSpec

_WHERE = {
    "nestvec.encoders.base": ("Encoder",),
    "nestvec.encoders.identity": ("ModelIdentity",),
    "nestvec.encoders.cache": ("CachedEncoder", "EmbeddingCache"),
    "nestvec.encoders.loading": ("NAMED_MODELS", "canonical_name", "encoder_for", "load_encoder", "resolve_model"),
    "nestvec.encoders.spec": ("BACKENDS", "COMPUTES", "DEFAULT_MODEL", "EncoderSpec"),
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}
__all__ = [
    "BACKENDS",
    "COMPUTES",
    "DEFAULT_MODEL",
    "NAMED_MODELS",
    "CachedEncoder",
    "EmbeddingCache",
    "Encoder",
    "EncoderSpec",
    "ModelIdentity",
    "canonical_name",
    "encoder_for",
    "load_encoder",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE:
        raise AttributeError(f"module 'nestvec.encoders' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
