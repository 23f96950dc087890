"""A mixed HTTP load on a real `nestvec serve`: embeddings, searches of every mode, and writes.

Clients (threads, one keep-alive connection each) draw requests at random: embeddings, dense /
sparse / hybrid searches with and without filters, gets, adds, upserts and deletes of their own
and of shared ids (so writes race each other and the searches). Every status is counted; a 5xx
is a failure. Used by the racing-client test (short, beside a CLI writer on the same collection)
and by reliability/soak.py (minutes, sampling the server's memory and descriptors).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

WORDS = [
    "vector",
    "search",
    "index",
    "binary",
    "int8",
    "graph",
    "retrieval",
    "sentence",
    "embedding",
    "neural",
    "model",
    "rank",
    "dense",
]


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, kind: str, response: httpx.Response) -> None:
        with self.lock:
            self.statuses[response.status_code] += 1
            self.by_kind[kind] += 1
            if response.status_code >= 500:
                self.server_errors.append(f"{kind} {response.status_code}: {response.text[:300]}")

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "by_kind": dict(self.by_kind.most_common()),
            "server_errors": len(self.server_errors),
            "first_server_errors": self.server_errors[:5],
            "transport_errors": len(self.transport_errors),
        }


def _text(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))


def _request(rng: random.Random, collection: str, client_id: int) -> tuple[str, str, str, dict[str, Any] | None]:
    """(kind, method, path, json) of one random request."""
    base = f"/collections/{collection}"
    own = f"c{client_id}-{rng.randrange(40)}"
    shared = f"shared-{rng.randrange(20)}"
    doc_id = rng.choice([own, shared])
    roll = rng.random()
    if roll < 0.15:
        return (
            "embed",
            "POST",
            "/v1/embeddings",
            {"input": [_text(rng) for _ in range(rng.randint(1, 4))], "model": "minilm"},
        )
    if roll < 0.55:
        body: dict[str, Any] = {
            "query": _text(rng),
            "k": rng.choice([1, 5, 10, 50]),
            "mode": rng.choice(["dense", "sparse", "hybrid"]),
        }
        if rng.random() < 0.3:
            body["filter"] = rng.choice(
                [{"group": rng.randrange(3)}, {"n": {"$gte": rng.randrange(100)}}, {"tag": {"$in": ["a", "b"]}}]
            )
        return "search", "POST", f"{base}/search", body
    if roll < 0.65:
        return "get", "GET", f"{base}/documents/{doc_id}", None
    if roll < 0.85:
        docs = [
            {
                "id": rng.choice([own, shared, f"c{client_id}-{rng.randrange(40)}"]),
                "text": _text(rng),
                "metadata": {"group": rng.randrange(3), "n": rng.randrange(100), "tag": rng.choice("abc")},
            }
            for _ in range(rng.randint(1, 4))
        ]
        docs = list({d["id"]: d for d in docs}.values())
        return "write", "POST", f"{base}/documents", {"documents": docs, "upsert": rng.random() < 0.7}
    if roll < 0.95:
        return "delete", "DELETE", f"{base}/documents/{doc_id}", None
    return "delete", "POST", f"{base}/documents/delete", {"ids": [own, shared]}


def run_load(
    url: str, *, collection: str, clients: int, seconds: float, seed: int = 0, headers: dict[str, str] | None = None
) -> Tally:
    """`clients` threads sending random requests for `seconds`; the tally of what came back."""
    tally = Tally()
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        with httpx.Client(base_url=url, timeout=60, headers=headers) as http:
            while time.monotonic() < deadline:
                kind, method, path, body = _request(rng, collection, n)
                try:
                    tally.count(kind, http.request(method, path, json=body))
                except httpx.HTTPError as exc:
                    with tally.lock:
                        tally.transport_errors.append(f"{kind}: {exc!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally
