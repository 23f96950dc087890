"""The model process: every model `nestvec serve` runs, each behind its micro-batcher.

The HTTP process (uvicorn, routes, collections) and the model do not share an interpreter: on a
small CPU the event loop's Python work and the model's held one GIL, so the model waited for
every request parsed and every answer written, and the HTTP layer waited for every batch's pre-
and post-processing. Here the model process reads requests from its socket on one thread, counts
tokens there (to fill batches by budget and refuse over-long texts before any model time is
spent), and answers each request from the batcher's thread with its rows as raw float32.
It exits when the HTTP process closes its end, so a killed server leaves no model behind.

Run by `ModelLink` as `python -m nestvec.serve.model_host FD CONFIG_JSON`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from nestvec.encoders import Encoder, load_encoder
from nestvec.encoders.loading import runs_on_cpu
from nestvec.encoders.prompts import model_prompts
from nestvec.encoders.transformer.onnx_backend import OnnxEncoder
from nestvec.errors import NestvecError
from nestvec.serve.batcher import BatchPolicy, MicroBatcher
from nestvec.serve.frames import LinkClosed, recv_frame, send_frame

log = logging.getLogger("nestvec.serve")


class _Model:
    """One model behind its batcher. `narrow`: the same model on fewer threads (its share of the
    cores), for a batch that starts while another is running: two batches on all the threads
    each would run more threads than there are cores (see worker_plan)."""

    def __init__(self, encoder: Encoder, policy: BatchPolicy) -> None:
        self.encoder = encoder
        self.narrow: Encoder | None = None  # set by add_narrow, once loaded
        self.batches = threading.local()  # the batch each request was answered in (its first reports it)
        self.batcher = MicroBatcher(self._encode, policy, observe=self._observe)

    def add_narrow(self, load: Callable[[], Encoder]) -> None:
        try:
            self.narrow = load()
        except Exception as exc:  # batches beside another keep running on every thread
            log.warning("The second session of %s could not be loaded: %s", self.encoder.name, exc)

    def _encode(self, texts: list[str]) -> np.ndarray:
        narrow = self.narrow
        encoder = narrow if narrow is not None and self.batcher.running > 1 else self.encoder
        return encoder.encode(texts, batch_size=64, progress=False)

    def _observe(self, texts: int, tokens: int, seconds: float) -> None:
        self.batches.last = [texts, tokens, seconds]

    def describe(self) -> dict[str, Any]:
        e = self.encoder
        return {
            "name": e.name,
            "source": e.source,
            "dim": e.dim,
            "max_tokens": e.max_tokens,
            "special_tokens": e.special_tokens,
            "identity": e.identity.to_dict(),
            "prompts": model_prompts(e),
        }


class Host:
    def __init__(self, sock: socket.socket, config: dict[str, Any]) -> None:
        self.sock, self.config = sock, config
        on_cpu = runs_on_cpu(config["backend"], config["compute"])
        workers, self.threads = worker_plan(config["batching"]["workers"], config["threads"], on_cpu=on_cpu)
        self.narrow_threads = narrow_threads(workers, self.threads) if on_cpu else None
        self.policy = BatchPolicy(**{**config["batching"], "workers": workers})
        self.models: dict[str, _Model] = {}
        self._send_lock = threading.Lock()

    def serve(self) -> None:
        try:
            while True:
                header, _ = recv_frame(self.sock)
                if header["op"] == "stop":
                    break
                self._handle(header)
        except LinkClosed:
            pass
        finally:
            for model in self.models.values():
                model.batcher.close()

    def _reply(self, header: dict[str, Any], payload: bytes = b"") -> None:
        # OSError: the HTTP process is gone; serve() sees the closed link next
        with self._send_lock, contextlib.suppress(OSError):
            send_frame(self.sock, header, payload)

    def _handle(self, request: dict[str, Any]) -> None:
        rid = request["id"]
        try:
            op = request["op"]
            if op == "load":
                found = self._load(request["key"], request["model"], request["layers"], request.get("pooling"))
                self._reply({"id": rid, **found})
                return
            model = self.models[request["key"]]
            if op == "embed":
                self._embed(rid, model, request["texts"], truncate=request["truncate"])
            elif op == "count":
                self._reply({"id": rid, "counts": model.encoder.token_counts(request["texts"])})
            elif op == "offsets":
                self._reply({"id": rid, "offsets": model.encoder.token_offsets(request["text"])})
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # the request fails, the process lives on
            self._reply({"id": rid, **_error(exc)})

    def _load(self, key: str, model: str, layers: int | None, pooling: str | None) -> dict[str, Any]:
        if key not in self.models:
            settings = {name: self.config[name] for name in ("backend", "compute")}
            encoder = load_encoder(model, layers=layers, pooling=pooling, threads=self.threads, **settings)
            self.models[key] = _Model(encoder, self.policy)
            if self.narrow_threads is not None and isinstance(encoder, OnnxEncoder):  # torch's threads are global
                options = {"layers": layers, "pooling": pooling, "threads": self.narrow_threads, **settings}
                # after start-up, not before it: until it is there, every batch runs on `encoder`
                load = functools.partial(load_encoder, model, **options)
                threading.Thread(target=self.models[key].add_narrow, args=(load,), daemon=True).start()
        return self.models[key].describe()

    def _embed(self, rid: int, model: _Model, texts: list[str], *, truncate: bool) -> None:
        counts = model.encoder.token_counts(texts)
        limit = model.encoder.max_tokens
        if not truncate and (long := [i for i, c in enumerate(counts) if c > limit]):
            self._reply({"id": rid, "too_long": [long[0], counts[long[0]], limit]})
            return
        used = [min(c, limit) for c in counts]

        def settle(vectors: np.ndarray | None, error: BaseException | None) -> None:
            if error is not None:
                self._reply({"id": rid, **_error(error)})
                return
            assert vectors is not None
            rows = np.ascontiguousarray(vectors, dtype="<f4")
            batch, model.batches.last = getattr(model.batches, "last", None), None
            header = {"id": rid, "shape": list(rows.shape), "counts": used, "batch": batch}
            self._reply(header, rows.tobytes())

        model.batcher.submit(texts, used, settle)


def worker_plan(workers: int | None, threads: int | None, *, on_cpu: bool) -> tuple[int, int | None]:
    """Model workers, and threads for each, where the user left them open (None).

    On a CPU of two or more cores: two workers, each free to use every core. One batch runs while
    the other's answers go out and the next requests come in, and a lone request still gets all
    the cores; with ONNX Runtime's spinning off (main()), the threads of two batches at once share
    the cores without burning them. Measured (docs/benchmarks.md "Serving searches"): 8 clients
    searching, 1.2-1.4x the requests/s of one 2-thread worker. On an accelerator, one worker: the
    device already runs a batch in parallel."""
    if workers is None:
        workers = 2 if on_cpu and len(os.sched_getaffinity(0)) >= 2 else 1
    return workers, threads


def narrow_threads(workers: int, threads: int | None) -> int | None:
    """Threads for a batch that runs beside another: each worker's share of the cores, or None
    where that is no fewer than a lone batch gets. Measured (docs/benchmarks.md "Serving
    embeddings"): 64 clients of 32 sentences, 1.12x the requests/s of two 2-thread batches at once
    on 2 cores; a lone batch keeps every thread (one thread would slow a lone request down)."""
    cores = threads or len(os.sched_getaffinity(0))
    share = max(1, cores // workers)
    return share if workers > 1 and share < cores else None


def _error(exc: BaseException) -> dict[str, Any]:
    kind = type(exc).__name__ if isinstance(exc, NestvecError) else "ModelFailure"
    return {"error": str(exc) or type(exc).__name__, "kind": kind}


def main(argv: list[str]) -> None:
    OnnxEncoder.spin_wait = False  # the HTTP process needs the cores between batches
    sock = socket.socket(fileno=int(argv[0]))
    Host(sock, json.loads(argv[1])).serve()
    sock.close()


if __name__ == "__main__":
    main(sys.argv[1:])
