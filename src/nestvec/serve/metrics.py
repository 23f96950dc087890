"""Prometheus metrics of one app: requests, latency, model batches and the queue before the model."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class Metrics:
    """A registry per app, so several apps in one process (tests) keep separate counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nestvec_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "nestvec_request_seconds", "Time to answer", ["route"], buckets=_LATENCY_BUCKETS, registry=self.registry
        )
        self.batch_texts = Histogram(
            "nestvec_batch_texts", "Texts per model batch", buckets=_SIZE_BUCKETS, registry=self.registry
        )
        self.batch_tokens = Histogram(
            "nestvec_batch_tokens",
            "Tokens per model batch",
            buckets=[16 * b for b in _SIZE_BUCKETS],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "nestvec_batch_seconds", "Model time per batch", buckets=_LATENCY_BUCKETS, registry=self.registry
        )
        self.queue_depth = Gauge("nestvec_queue_depth", "Requests waiting for the model", registry=self.registry)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)

    def observe_batch(self, texts: int, tokens: int, seconds: float) -> None:
        self.batch_texts.observe(texts)
        self.batch_tokens.observe(tokens)
        self.batch_seconds.observe(seconds)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
