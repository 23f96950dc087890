"""The FastAPI app: routes from embeddings.py and collections.py, errors as JSON, metrics, the page."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nestvec._version import __version__
from nestvec.errors import CollectionGoneError, DuplicateIdError, NestvecError
from nestvec.serve import collections, embeddings, rerank
from nestvec.serve.auth import DOCS_ASSETS, Authenticate, KeyStore
from nestvec.serve.catalog import Catalog, ConflictError, NotFoundError
from nestvec.serve.deps import Read, State
from nestvec.serve.encoders import InputTooLong, ServedEncoders
from nestvec.serve.limits import BodyLimit, error_body
from nestvec.serve.metrics import Metrics
from nestvec.serve.model_link import ModelFailure
from nestvec.serve.state import ServeConfig, ServerState

log = logging.getLogger("nestvec.serve")


def create_app(config: ServeConfig) -> FastAPI:
    """Load the model and the collections, and build the app (nothing listens until uvicorn runs it)."""
    metrics = Metrics()
    encoders = ServedEncoders(config, metrics)
    try:
        server = ServerState(
            config=config,
            encoders=encoders,
            catalog=Catalog(list(config.collections), data_dir=config.data_dir, encoders=encoders),
            keys=KeyStore.open(config.keys) if config.keys is not None else None,
            metrics=metrics,
            reranker=_reranker(config),
        )
    except BaseException:
        encoders.close()  # the model process goes with the app that failed to start
        raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        server.close()  # checkpoints every collection's index

    # fastapi-offline: /docs and /redoc with their scripts served from the installed package (no CDN)
    app = FastAPIOffline(
        title="nestvec", version=__version__, lifespan=lifespan, description=_DESCRIPTION, static_url=DOCS_ASSETS
    )
    app.state.nestvec = server
    app.include_router(embeddings.router)
    app.include_router(collections.router)
    app.include_router(rerank.router)
    _add_basics(app)
    _add_errors(app)
    app.add_middleware(Observe, metrics=metrics)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_body_bytes, timeout_s=config.limits.body_timeout_s)
    if server.keys is not None:
        app.add_middleware(Authenticate, keys=server.keys)  # outermost: before any body is read
    return app


def _reranker(config: ServeConfig) -> Any:
    if config.reranker is None:
        return None
    from nestvec.rerank import load_reranker

    return load_reranker(config.reranker, backend=config.backend, threads=config.threads)


_DESCRIPTION = (
    "Embeddings (OpenAI-compatible), collections and search over nestvec. Send API keys as "
    "'Authorization: Bearer <key>' unless the server runs with authentication off."
)


def _add_basics(app: FastAPI) -> None:
    @app.get("/healthz", tags=["service"])
    async def healthz(server: State) -> dict[str, Any]:
        return {"status": "ok", "model": server.encoder.name, "collections": len(server.catalog.names())}

    @app.get("/metrics", tags=["service"], dependencies=[Read], response_class=Response)
    async def metrics(server: State) -> Response:
        return Response(server.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("nestvec.serve").joinpath("page.html").read_text(encoding="utf-8"))


def _add_errors(app: FastAPI) -> None:
    def reply(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
        return JSONResponse(error_body(status, message, kind, param), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5]]
        return reply(422, "Invalid request. " + "; ".join(problems), "invalid_request_error")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found"}.get(exc.status_code, "error")
        return reply(exc.status_code, str(exc.detail), kind)

    @app.exception_handler(NestvecError)
    async def library_error(request: Request, exc: NestvecError) -> JSONResponse:
        if isinstance(exc, (NotFoundError, CollectionGoneError)):
            return reply(404, str(exc), "not_found")
        if isinstance(exc, (ConflictError, DuplicateIdError)):
            return reply(409, str(exc), "conflict")
        if isinstance(exc, InputTooLong):
            return reply(413, str(exc), "input_too_long")
        return reply(400, str(exc), "invalid_request_error")

    @app.exception_handler(TimeoutError)
    async def timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        return reply(503, str(exc), "timeout")

    @app.exception_handler(ModelFailure)
    async def model_failure(request: Request, exc: ModelFailure) -> JSONResponse:
        return reply(503, str(exc), "model_unavailable")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return reply(500, f"Internal error ({type(exc).__name__}); the server log has details.", "server_error")


class Observe:
    """Counts and times every request (plain ASGI: Starlette's BaseHTTPMiddleware costs a task per request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # the template: bounded label values
            self.metrics.observe_request(scope["method"], route, status, time.perf_counter() - start)
