"""`nestvec serve` runs its models in their own process: what happens when either process dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="nestvec serve needs the 'serve' extra")

import nestvec
from tests.conftest import paper_docs
from tests.serving import served


def _model_process(server_pid: int) -> int:
    """The pid of the server's model process (its child running nestvec.serve.model_host)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if parent == server_pid and b"nestvec.serve.model_host" in command:
            return int(entry)
    raise AssertionError(f"no model process under {server_pid}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _embed(url: str, texts: list[str], timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json={"input": texts, "model": "minilm"}, timeout=timeout)


def test_a_killed_model_process_fails_its_requests_with_503_and_is_restarted(
    tmp_path: Path, encoder: nestvec.Encoder
) -> None:
    with nestvec.Collection.create(tmp_path / "papers") as papers:
        papers.add(paper_docs(20))
    with served([str(tmp_path / "papers")], log=tmp_path / "server.log") as (url, proc):
        first = _model_process(proc.pid)
        texts = ["The quick brown fox.", "Binary codes with rescoring."]
        before = np.array([d["embedding"] for d in _embed(url, texts).json()["data"]])
        np.testing.assert_allclose(before, encoder.encode(texts), atol=1e-5)
        time.sleep(6)  # past the start-up window in which a dying model process is not restarted
        waiting: list[httpx.Response] = []
        many = [f"sentence number {i}" for i in range(2000)]
        big = threading.Thread(target=lambda: waiting.append(_embed(url, many)))
        big.start()
        time.sleep(0.5)  # the big request is in the model's hands
        os.kill(first, signal.SIGKILL)
        big.join(timeout=60)
        assert waiting[0].status_code == 503, waiting[0].text
        assert waiting[0].json()["error"]["type"] == "model_unavailable"
        assert "model process exited" in waiting[0].json()["error"]["message"]
        deadline, answer = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            answer = _embed(url, texts)
            assert answer.status_code in (200, 503), answer.text  # never a 500 while it restarts
            if answer.status_code == 200:
                break
            time.sleep(0.5)
        assert answer is not None and answer.status_code == 200
        np.testing.assert_allclose(np.array([d["embedding"] for d in answer.json()["data"]]), before, atol=1e-6)
        assert _model_process(proc.pid) != first
        # the collection's model came back with it: its queries and writes embed again
        hits = httpx.post(f"{url}/collections/papers/search", json={"query": paper_docs(1)[0].text, "k": 1}).json()
        assert hits["hits"][0]["id"] == paper_docs(1)[0].id
        assert "restarting it" in (tmp_path / "server.log").read_text()


def test_a_killed_server_leaves_no_model_process(tmp_path: Path) -> None:
    with served([], log=tmp_path / "server.log") as (url, proc):
        model = _model_process(proc.pid)
        assert _embed(url, ["hello"]).status_code == 200
        proc.kill()  # SIGKILL: no shutdown code runs in the HTTP process
        proc.wait()
        deadline = time.monotonic() + 20
        while _alive(model) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(model), "the model process outlived its server"


def test_the_servers_connections_do_not_wait_for_delayed_acks() -> None:
    """Responses are written in two parts (headers, body); without TCP_NODELAY each waited ~40 ms for
    the client's delayed ACK. asyncio sets it only on sockets that say they are TCP."""
    import asyncio
    import socket

    from nestvec.cli.serve_run import bind

    listening = bind("127.0.0.1", 0)
    assert listening.proto == socket.IPPROTO_TCP

    async def accepted_nodelay() -> int:
        found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            found.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listening)
        _, writer = await asyncio.open_connection(*listening.getsockname())
        value = await asyncio.wait_for(found, 10)
        writer.close()
        server.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0
