"""Running the server: bind the port first, then say where it listens, then serve.

Binding before the model loads means a taken port is a one-line error at once (not a banner,
a minute of loading, then uvicorn's "address already in use"), and the banner is printed only
once the address is really ours.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from nestvec.errors import InputError


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or an InputError saying why not."""
    try:
        family, kind, proto = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][:3]
        # proto must say TCP: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP,
        # and without it every response written in two parts waited ~40 ms for a delayed ACK.
        sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    except OSError as exc:
        raise InputError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); check --host.") from exc
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop (TIME_WAIT)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}); is another server there? Choose --port."
        ) from exc
    return sock


def run(app: Any, sock: socket.socket, *, header_timeout: float, access_log: bool) -> None:
    import uvicorn

    from nestvec.serve.protocol import timed_protocol

    config = uvicorn.Config(
        app, http=timed_protocol(header_timeout), log_level="warning", timeout_graceful_shutdown=10,
        access_log=access_log,
    )  # fmt: skip
    if access_log:  # uvicorn's own start-up lines stay at warning; one line per request
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    uvicorn.Server(config).run(sockets=[sock])


def bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
