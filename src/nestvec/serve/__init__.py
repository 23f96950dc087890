"""`nestvec serve`: an HTTP service (FastAPI) over encoders and collections. Needs the `serve` extra."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nestvec.serve.state import ServeConfig


def create_app(config: ServeConfig) -> FastAPI:
    try:
        from nestvec.serve.app import create_app as create
    except ImportError as exc:
        from nestvec.errors import MissingExtraError

        raise MissingExtraError(exc.name or "fastapi", "serve", "nestvec serve") from exc
    return create(config)


def __getattr__(name: str) -> Any:
    if name in ("ServeConfig", "Limits", "BatchPolicy"):
        from nestvec.serve import batcher, limits, state

        return {"ServeConfig": state.ServeConfig, "Limits": limits.Limits, "BatchPolicy": batcher.BatchPolicy}[name]
    raise AttributeError(name)


__all__ = ["BatchPolicy", "Limits", "ServeConfig", "create_app"]
