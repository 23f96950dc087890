"""Messages between the HTTP process and the model process: a JSON header and raw bytes.

One frame is `total length | header length | header JSON | payload` over a Unix socket pair.
Vectors travel as the payload's raw float32 rows, texts in the header: no pickle, nothing a
peer could make the other side execute.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

_LENGTHS = struct.Struct("!QI")


class LinkClosed(ConnectionError):
    """The other process closed its end (it exited, or was killed)."""


def send_frame(sock: socket.socket, header: dict[str, Any], payload: bytes = b"") -> None:
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    sock.sendall(_LENGTHS.pack(len(head) + len(payload), len(head)) + head + payload)


def recv_frame(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    total, head_length = _LENGTHS.unpack(_recv_exactly(sock, _LENGTHS.size))
    body = _recv_exactly(sock, total)
    header = json.loads(body[:head_length])
    return header, body[head_length:]


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise LinkClosed("the other end closed the link")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
