"""Micro-batching: concurrent embedding requests coalesced into one model call.

A worker thread (one by default) owns the model. It takes the oldest waiting request, then
keeps taking requests in arrival order while their tokens fit the budget, for up to
`max_wait_ms`; the whole batch is one `encode` call, and each request gets its rows back.
The wait only happens under concurrency (the worker's last batch held more than one request),
so a lone client never pays it (measured: 70 vs 49 requests/s for one client, one sentence
each), and it runs from when the worker is free, not from the oldest arrival, so a backlog
still gathers the requests that come in right after a batch is answered.
A request larger than the budget runs alone. With several workers, a request of many texts is
cut into parts that the workers take in turn, so one large request still keeps every worker busy.
It lives in the model process (model_host.py), which answers each request from the `settle`
callback it was submitted with.
"""

from __future__ import annotations

import threading
import time
from collections import deque
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
    workers: int | None = None  # None: the model process picks (model_host.worker_plan)


Settle = Callable[[np.ndarray | None, BaseException | None], None]


@dataclass
class _Request:
    texts: list[str]
    tokens: int
    settle: Settle  # called on the worker thread with the rows or the error
    group: int | None = None  # the parts of one cut request share it


class _Timeout:
    """What `_Line.take` returns when nothing came by its deadline."""


TIMEOUT = _Timeout()


class _Line:
    """The requests waiting for a worker, oldest first. A worker filling a batch passes over the
    other parts of a request it already holds, so that they stay for another worker."""

    def __init__(self) -> None:
        self._items: deque[_Request | None] = deque()
        self._changed = threading.Condition()

    def put(self, item: _Request | None) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify()

    def take(self, deadline: float | None = None, skip: frozenset[int] = frozenset()) -> _Request | _Timeout | None:
        """The oldest item not in a `skip` group; None means stop; TIMEOUT: none came by `deadline`."""
        with self._changed:
            while True:
                for i, item in enumerate(self._items):
                    if item is None or item.group not in skip:
                        del self._items[i]
                        return item
                left = None if deadline is None else deadline - time.perf_counter()
                if left is not None and left <= 0:
                    return TIMEOUT
                self._changed.wait(left)


BatchObserver = Callable[[int, int, float], None]  # (texts, tokens, seconds) of each model call


class _Joined:
    """One request answered in parts: the rows gathered in place, `settle` called once at the end."""

    def __init__(self, rows: int, parts: int, settle: Settle) -> None:
        self._rows: np.ndarray | None = None
        self._count, self._left, self._settle = rows, parts, settle
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def part(self, start: int) -> Settle:
        def settle(vectors: np.ndarray | None, error: BaseException | None) -> None:
            with self._lock:
                if error is not None:
                    self._error = self._error or error
                elif vectors is not None:
                    if self._rows is None:
                        self._rows = np.empty((self._count, vectors.shape[1]), dtype=vectors.dtype)
                    self._rows[start : start + len(vectors)] = vectors
                self._left -= 1
                if self._left:
                    return
            self._settle(None if self._error else self._rows, self._error)

        return settle


class MicroBatcher:
    # Below this many tokens a request is not worth cutting: the parts would cost more in
    # per-call overhead than the second worker gains.
    min_part_tokens = 256

    def __init__(
        self,
        encode: Callable[[list[str]], np.ndarray],
        policy: BatchPolicy,
        *,
        observe: BatchObserver | None = None,
    ) -> None:
        self._encode, self.policy, self._observe = encode, policy, observe
        self._line = _Line()
        self.workers = policy.workers or 1
        self._running, self._running_lock = 0, threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"nestvec-batcher-{i}", daemon=True) for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, texts: list[str], counts: list[int], settle: Settle) -> None:
        """Queue `texts` (with their token counts); `settle` is called on a worker thread, once,
        with their rows or the error."""
        parts = self._parts(counts)
        if len(parts) == 1:
            self._line.put(_Request(texts, sum(counts), settle))
            return
        joined = _Joined(len(texts), len(parts), settle)
        for start, stop in parts:
            self._line.put(_Request(texts[start:stop], sum(counts[start:stop]), joined.part(start), id(joined)))

    def _parts(self, counts: list[int]) -> list[tuple[int, int]]:
        """(start, stop) of consecutive parts, about `total / workers` tokens each, at most the budget."""
        total = sum(counts)
        if not self.policy.enabled or self.workers == 1 or total < 2 * self.min_part_tokens:
            return [(0, len(counts))]
        size = max(self.min_part_tokens, -(-total // self.workers))
        parts, start, tokens = [], 0, 0
        for i, count in enumerate(counts):
            if tokens and tokens + count > self.policy.max_tokens:
                parts.append((start, i))
                start, tokens = i, 0
            tokens += count
            if tokens >= size and i + 1 < len(counts):
                parts.append((start, i + 1))
                start, tokens = i + 1, 0
        parts.append((start, len(counts)))
        return parts

    @property
    def running(self) -> int:
        """Batches being encoded now (read from `encode`: the caller's own counts)."""
        return self._running

    def close(self) -> None:
        for _ in self._threads:
            self._line.put(None)
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        held: _Request | None = None  # taken from the queue, but it did not fit the last batch
        busy = False  # the last batch held several requests: worth waiting for company
        while True:
            first = held if held is not None else self._line.take()
            if not isinstance(first, _Request):
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
        groups = frozenset() if first.group is None else frozenset((first.group,))
        while tokens < self.policy.max_tokens:
            nxt = self._line.take(deadline, skip=groups)
            if isinstance(nxt, _Timeout):
                break
            if nxt is None:
                self._line.put(None)  # finish this batch, then stop
                break
            if tokens + nxt.tokens > self.policy.max_tokens:
                return batch, nxt
            batch.append(nxt)
            tokens += nxt.tokens
            if nxt.group is not None:
                groups |= {nxt.group}
        return batch, None

    def _process(self, batch: list[_Request]) -> None:
        texts = [t for r in batch for t in r.texts]
        start = time.perf_counter()
        with self._running_lock:
            self._running += 1
        try:
            vectors = self._encode(texts)
        except Exception as exc:  # every waiting request learns of it; the worker lives on
            for r in batch:
                r.settle(None, exc)
            return
        finally:
            with self._running_lock:
                self._running -= 1
        if self._observe is not None:
            self._observe(len(texts), sum(r.tokens for r in batch), time.perf_counter() - start)
        row = 0
        for r in batch:  # in arrival order
            part = vectors[row : row + len(r.texts)]
            row += len(r.texts)
            r.settle(part, None)
