"""A real `nestvec serve` process on a free loopback port, for tests and bench/serve.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_process(
    args: Sequence[str], *, log: Path, threads: int | None = None, src: Path | None = None
) -> Iterator[str]:
    """Start `nestvec serve ARGS --port P`, wait until /healthz answers, yield the base URL, stop it.

    `src`: run the nestvec found there instead (bench/serve.py compares two checkouts in one run).
    """
    with served(args, log=log, threads=threads, src=src) as (url, _):
        yield url


@contextmanager
def served(
    args: Sequence[str], *, log: Path, threads: int | None = None, src: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serve_process`, also yielding the server's process (reliability/soak.py samples its memory)."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    command = [sys.executable, "-m", "nestvec.cli.main", "serve", *args, "--port", str(port)]
    if threads is not None:
        command += ["--threads", str(threads)]
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, log)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nestvec serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nestvec serve did not become healthy in 180 s:\n{log.read_text()[-3000:]}")
