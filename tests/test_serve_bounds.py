"""Resource bounds of a real `nestvec serve`: header and body deadlines, no body read before auth."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("fastapi", reason="nestvec serve needs the 'serve' extra")

from nestvec.serve.auth import KeyStore
from tests.serving import serve_process


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("bounds")
    _, secret = KeyStore.open(root / "keys.json", create=True).create(scope="read")
    args = ["--keys", str(root / "keys.json"), "--header-timeout", "1", "--body-timeout", "1"]
    with serve_process(args, log=root / "server.log") as url:
        yield url, secret


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)))
    conn.settimeout(10)
    return conn


def _read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def test_a_silent_or_trickling_client_is_cut_off(guarded: tuple[str, str]) -> None:
    url, _ = guarded
    with _connect(url) as silent:
        start = time.monotonic()
        assert _read_all(silent) == b""  # closed by the server, not by our 10 s timeout
        assert time.monotonic() - start < 5
    with _connect(url) as trickle:
        start = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                trickle.sendall(bytes([byte]))
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert time.monotonic() - start < 5.5  # 100+ bytes at 20/s would take over 6 s
        assert _read_all(trickle) == b""


def test_a_body_that_stalls_gets_408(guarded: tuple[str, str]) -> None:
    url, secret = guarded
    with _connect(url) as slow:
        slow.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {secret}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"input": "sl'
        )
        start = time.monotonic()
        reply = _read_all(slow)
    assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in reply
    assert time.monotonic() - start < 5


def test_no_body_is_read_before_the_key_is_checked(guarded: tuple[str, str]) -> None:
    url, secret = guarded
    with _connect(url) as anonymous:
        # A declared 5 MB body, none of it sent: the answer comes at once, from the headers alone.
        anonymous.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000000\r\n\r\n"
        )
        start = time.monotonic()
        reply = _read_all(anonymous)  # and the server closes the connection rather than read the body
        assert reply.startswith(b"HTTP/1.1 401") and time.monotonic() - start < 0.9  # before the body deadline
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["type"] == "authentication_error"
    ok = httpx.post(
        f"{url}/v1/embeddings",
        json={"input": "hi", "model": "minilm"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert ok.status_code == 200
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # public
    assert httpx.get(f"{url}/collections", timeout=5, headers={"Authorization": "Bearer nv-wrong"}).status_code == 401
