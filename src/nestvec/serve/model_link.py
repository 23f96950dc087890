"""The HTTP process's end of the model process: requests out, answers in, a restart after a crash.

Requests carry an id and are answered out of order (a batch answers all of its requests at once);
one reader thread settles each request's future. If the model process dies, every waiting request
fails with a `ModelFailure` (503) and a new process is started with the same models, loaded before
any new request reaches it; one that dies within seconds of starting is not restarted again.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, InvalidStateError
from typing import Any

from nestvec import errors
from nestvec.serve.frames import LinkClosed, recv_frame, send_frame

log = logging.getLogger("nestvec.serve")

Reply = tuple[dict[str, Any], bytes]
_SHORT_LIFE_S = 5.0  # a process that dies this soon after starting would only die again


class ModelFailure(RuntimeError):
    """The model process failed this request (it crashed, or the model raised): a 503, never a 4xx."""


class ModelLink:
    def __init__(self, host_config: dict[str, Any]) -> None:
        self._config = json.dumps(host_config)
        self._lock = threading.Lock()  # the socket's sending side and the pending table
        self._pending: dict[int, Future[Reply]] = {}
        self._ids = itertools.count()
        self._loads: dict[str, dict[str, Any]] = {}  # replayed, in order, into a restarted process
        self._closing = False
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        with self._lock:
            self._start()

    def _start(self) -> None:
        """A new model process with every model loaded so far (called holding the lock)."""
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "nestvec.serve.model_host", str(theirs.fileno()), self._config]
        proc = subprocess.Popen(command, pass_fds=[theirs.fileno()])
        theirs.close()
        for load in self._loads.values():  # first on the socket, so they run before anything else
            self._send(ours, load, Future())
        self._sock, self._proc, started = ours, proc, time.monotonic()
        threading.Thread(target=self._read, args=(ours, proc, started), name="nestvec-model-link", daemon=True).start()

    def _send(self, sock: socket.socket, header: dict[str, Any], future: Future[Reply]) -> None:
        rid = next(self._ids)
        self._pending[rid] = future
        try:
            send_frame(sock, {**header, "id": rid})
        except OSError:
            self._pending.pop(rid, None)
            raise ModelFailure("The model process is not answering; it is being restarted. Retry.") from None

    def request(self, header: dict[str, Any]) -> Future[Reply]:
        """Send a request; its future holds the reply, or the error the model process raised."""
        future: Future[Reply] = Future()
        with self._lock:
            if self._sock is None:
                raise ModelFailure("The model process stopped and could not be restarted; see the server log.")
            self._send(self._sock, header, future)
        return future

    def call(self, header: dict[str, Any]) -> Reply:
        return self.request(header).result()

    def load(self, key: str, model: str, layers: int | None, pooling: str | None = None) -> dict[str, Any]:
        header = {"op": "load", "key": key, "model": model, "layers": layers, "pooling": pooling}
        described, _ = self.call(header)
        with self._lock:
            self._loads.setdefault(key, header)
        return described

    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)

    def close(self) -> None:
        with self._lock:
            self._closing = True
            sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):  # the host finishes the batches it holds, then exits
            send_frame(sock, {"op": "stop", "id": -1})
        sock.shutdown(socket.SHUT_WR)
        if self._proc is not None:
            _wait(self._proc)

    def _read(self, sock: socket.socket, proc: subprocess.Popen[bytes], started: float) -> None:
        try:
            while True:
                header, payload = recv_frame(sock)
                with self._lock:
                    future = self._pending.pop(header["id"], None)
                if future is not None:
                    _settle(future, (header, payload))
        except (LinkClosed, OSError):
            pass
        code = _wait(proc)
        sock.close()
        with self._lock:
            pending, self._pending = self._pending, {}
            if self._sock is sock:
                self._sock = None
            restart = not self._closing and time.monotonic() - started > _SHORT_LIFE_S
            message = f"The model process exited (code {code}) before answering"
            if not self._closing:
                log.error("%s; %s", message, "restarting it" if restart else "not restarting it (it died at start-up)")
            if restart:
                self._start()
        for future in pending.values():
            _fail(future, ModelFailure(f"{message}; {'it was restarted: retry' if restart else 'see the server log'}."))


def _wait(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # it closed the link but hangs: it can serve no one
        proc.kill()
        return proc.wait()


def _settle(future: Future[Reply], reply: Reply) -> None:
    header = reply[0]
    if "error" in header:
        _fail(future, _exception(header))
        return
    with contextlib.suppress(InvalidStateError):  # its caller timed out and cancelled it
        future.set_result(reply)


def _fail(future: Future[Reply], error: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):
        future.set_exception(error)


def _exception(header: dict[str, Any]) -> BaseException:
    """The model process's error as the class it raised there (nestvec's own), else a ModelFailure."""
    kind = getattr(errors, str(header.get("kind")), None)
    if isinstance(kind, type) and issubclass(kind, errors.NestvecError):
        error = kind.__new__(kind)  # not kind(...): some take other arguments; the message is already whole
        Exception.__init__(error, header["error"])
        return error
    return ModelFailure(f"The model failed: {header['error']}")
