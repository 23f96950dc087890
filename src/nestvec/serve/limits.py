"""Request limits, and the ASGI middleware that enforces the body size before any parsing."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 8 * 1024 * 1024
    max_texts: int = 2048  # per request, as OpenAI's embeddings endpoint
    max_chars: int = 100_000  # per text
    max_k: int = 1000
    timeout_s: float = 30.0  # embeddings and searches; writes always finish once started
    header_timeout_s: float = 10.0  # from connecting (or the previous response) to the end of the headers
    body_timeout_s: float = 30.0  # from the end of the headers to the end of the body


def error_body(status: int, message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, which its clients parse: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


class BodyLimit:
    """Reads the body up to the limit and the deadline, then hands it on; larger bodies get 413 and
    are never parsed, bodies that do not arrive in time 408."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                await self._too_slow(send)
                return
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._reject(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the client to disconnect

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        message = (
            f"The request body is larger than this server's limit of {self.max_bytes:,} bytes. "
            "Send fewer or shorter texts per request (or start the server with a larger --max-body-mb)."
        )
        # Not closed: closing with the client's body still arriving makes the kernel reset the
        # connection, and the client may lose this answer; uvicorn reads and drops the rest instead.
        await send_error(send, 413, message, "request_too_large")

    async def _too_slow(self, send: Send) -> None:
        message = f"The request body did not arrive within {self.timeout_s:g} s (the server's --body-timeout)."
        await send_error(send, 408, message, "request_timeout", close=True)


async def send_error(send: Send, status: int, message: str, kind: str, *, close: bool = False) -> None:
    """An error response from plain ASGI middleware, in the same shape as the app's."""
    payload = json.dumps(error_body(status, message, kind)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
