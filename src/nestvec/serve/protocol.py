"""uvicorn's HTTP protocol with a deadline for every request's headers.

uvicorn times out idle keep-alive connections but sets no deadline on a request's headers: a
client that connects and sends nothing, or trickles a header a byte at a time, holds its
connection forever (slowloris). This closes any connection whose headers are not complete
`header_timeout` seconds after it opened or after its previous response.

The parser is httptools (the `serve` extra installs it) and h11 only where it is missing: on a
small CPU, h11's pure-Python parsing was a tenth of the server's work per search request.
"""

from __future__ import annotations

import asyncio
from typing import Any


class HeaderDeadline:
    """Mixed in before one of uvicorn's protocol classes (which set `cycle`, `loop`, `transport`)."""

    header_timeout = 10.0
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # the headers are in: the app's body deadline takes over

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request already started
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            assert self._deadline is not None
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def timed_protocol(header_timeout: float) -> Any:
    """The protocol class for uvicorn's `http=` with this header deadline."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]
    return type("TimedProtocol", (HeaderDeadline, base), {"header_timeout": header_timeout})
