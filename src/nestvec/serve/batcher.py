"""Micro-batching: concurrent embedding requests coalesced into one model call.

One worker thread owns the model. It takes the oldest waiting request, then keeps taking
requests in arrival order while their tokens fit the budget and the oldest has waited less
than `max_wait_ms`; the whole batch is one `encode` call, and each request gets its rows back.
A request larger than the budget runs alone. The event loop only waits on futures, so slow
clients (reading or writing) never hold the model.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class BatchPolicy:
    """`max_tokens`: token budget of one model batch; `max_wait_ms`: how long the oldest request waits
    for company. `enabled=False` encodes every request on its own (the baseline for bench/serve.py)."""

    enabled: bool = True
    max_tokens: int = 8192
    max_wait_ms: float = 5.0


@dataclass
class _Request:
    texts: list[str]
    tokens: int
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop
    arrived: float = field(default_factory=time.perf_counter)


BatchObserver = Callable[[int, int, float], None]  # (texts, tokens, seconds) of each model call


class MicroBatcher:
    def __init__(
        self,
        encode: Callable[[list[str]], np.ndarray],
        policy: BatchPolicy,
        *,
        observe: BatchObserver | None = None,
    ) -> None:
        self._encode, self.policy, self._observe = encode, policy, observe
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._held: _Request | None = None  # took it, but it did not fit the last batch
        self._thread = threading.Thread(target=self._run, name="nestvec-batcher", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        """Requests waiting for the model."""
        return self._queue.qsize() + (self._held is not None)

    async def embed(self, texts: list[str], tokens: int) -> np.ndarray:
        loop = asyncio.get_running_loop()
        request = _Request(texts, tokens, loop.create_future(), loop)
        self._queue.put(request)
        return await request.future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._process(batch)

    def _next_batch(self) -> list[_Request] | None:
        first = self._held if self._held is not None else self._queue.get()
        self._held = None
        if first is None:
            return None
        batch, tokens = [first], first.tokens
        if not self.policy.enabled:
            return batch
        deadline = first.arrived + self.policy.max_wait_ms / 1000
        while tokens < self.policy.max_tokens:
            try:
                nxt = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if nxt is None:
                self._queue.put(None)  # finish this batch, then stop
                break
            if tokens + nxt.tokens > self.policy.max_tokens:
                self._held = nxt
                break
            batch.append(nxt)
            tokens += nxt.tokens
        return batch

    def _process(self, batch: list[_Request]) -> None:
        texts = [t for r in batch for t in r.texts]
        start = time.perf_counter()
        try:
            vectors = self._encode(texts)
        except Exception as exc:  # every waiting request learns of it; the worker lives on
            for r in batch:
                r.loop.call_soon_threadsafe(_settle, r.future, None, exc)
            return
        if self._observe is not None:
            self._observe(len(texts), sum(r.tokens for r in batch), time.perf_counter() - start)
        row = 0
        for r in batch:  # in arrival order
            part = vectors[row : row + len(r.texts)]
            row += len(r.texts)
            r.loop.call_soon_threadsafe(_settle, r.future, part, None)


def _settle(future: asyncio.Future[np.ndarray], value: np.ndarray | None, error: BaseException | None) -> None:
    if future.done():  # the request timed out or its client left
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert value is not None
        future.set_result(value)
