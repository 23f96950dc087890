"""Micro-batching: concurrent embedding requests coalesced into one model call.

A worker thread (one by default) owns the model. It takes the oldest waiting request, then
keeps taking requests in arrival order while their tokens fit the budget, for up to
`max_wait_ms`; the whole batch is one `encode` call, and each request gets its rows back.
The wait only happens under concurrency (the worker's last batch held more than one request),
so a lone client never pays it (measured: 70 vs 49 requests/s for one client, one sentence
each), and it runs from when the worker is free, not from the oldest arrival, so a backlog
still gathers the requests that come in right after a batch is answered.
A request larger than the budget runs alone. It lives in the model process (model_host.py),
which answers each request from the `settle` callback it was submitted with.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchPolicy:
    """`max_tokens`: token budget of one model batch; `max_wait_ms`: how long the oldest request waits
    for company. `enabled=False` encodes every request on its own (the baseline for bench/serve.py)."""

    enabled: bool = True
    max_tokens: int = 8192
    max_wait_ms: float = 5.0
    workers: int = 1


Settle = Callable[[np.ndarray | None, BaseException | None], None]


@dataclass
class _Request:
    texts: list[str]
    tokens: int
    settle: Settle  # called on the worker thread with the rows or the error


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
        self._threads = [
            threading.Thread(target=self._run, name=f"nestvec-batcher-{i}", daemon=True) for i in range(policy.workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, texts: list[str], tokens: int, settle: Settle) -> None:
        """Queue `texts`; `settle` is called on the worker thread with their rows or the error."""
        self._queue.put(_Request(texts, tokens, settle))

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        held: _Request | None = None  # taken from the queue, but it did not fit the last batch
        busy = False  # the last batch held several requests: worth waiting for company
        while True:
            first = held if held is not None else self._queue.get()
            if first is None:
                return
            batch, held = self._fill(first, wait=busy)
            busy = len(batch) > 1
            self._process(batch)

    def _fill(self, first: _Request, *, wait: bool) -> tuple[list[_Request], _Request | None]:
        """The batch starting with `first`, and the request that did not fit (if any)."""
        batch, tokens = [first], first.tokens
        if not self.policy.enabled:
            return batch, None
        deadline = time.perf_counter() + (self.policy.max_wait_ms / 1000 if wait else 0.0)
        while tokens < self.policy.max_tokens:
            try:
                nxt = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if nxt is None:
                self._queue.put(None)  # finish this batch, then stop
                break
            if tokens + nxt.tokens > self.policy.max_tokens:
                return batch, nxt
            batch.append(nxt)
            tokens += nxt.tokens
        return batch, None

    def _process(self, batch: list[_Request]) -> None:
        texts = [t for r in batch for t in r.texts]
        start = time.perf_counter()
        try:
            vectors = self._encode(texts)
        except Exception as exc:  # every waiting request learns of it; the worker lives on
            for r in batch:
                r.settle(None, exc)
            return
        if self._observe is not None:
            self._observe(len(texts), sum(r.tokens for r in batch), time.perf_counter() - start)
        row = 0
        for r in batch:  # in arrival order
            part = vectors[row : row + len(r.texts)]
            row += len(r.texts)
            r.settle(part, None)
