"""The server's encoders: each model loaded once, in the model process, behind its micro-batcher.

/v1/embeddings and every served collection (queries and documents alike) embed through these,
so a collection's queries run with the server's --backend/--compute/--threads and are batched
with everyone else's. A collection whose recipe the server's encoder does not match is refused
at start-up, naming what differs. The models run in their own process (model_host.py says why);
a `BatchedEncoder` is the HTTP process's view of one of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.encoders import ModelIdentity
from nestvec.errors import InputError, ModelError, RecipeMismatchError
from nestvec.recipe import Recipe
from nestvec.serve.metrics import Metrics
from nestvec.serve.model_link import ModelFailure, ModelLink, Reply
from nestvec.serve.state import ServeConfig


class InputTooLong(InputError):
    """A text over the model's window with truncate=false: 413, as TEI answers."""


class BatchedEncoder:
    """An Encoder whose work runs in the model process; `encode` waits its turn in the micro-batcher."""

    def __init__(self, link: ModelLink, key: str, described: dict[str, Any], metrics: Metrics) -> None:
        self._link, self._key, self._metrics = link, key, metrics
        self.name, self.source = str(described["name"]), str(described["source"])
        self.dim, self.max_tokens = int(described["dim"]), int(described["max_tokens"])
        self._special_tokens = int(described["special_tokens"])
        self._identity = ModelIdentity.from_dict(described["identity"])
        self.prompts: dict[str, str] = dict(described["prompts"])

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    @property
    def special_tokens(self) -> int:
        return self._special_tokens

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._vectors(self._link.call(self._embedding(texts, truncate=True)))[0]

    async def embed(self, texts: list[str], *, truncate: bool = True) -> tuple[np.ndarray, list[int]]:
        """Vectors and the tokens each text used, for the event loop (it awaits, holding no thread).
        With `truncate=False` a text over the model's window is an InputTooLong, before any model work."""
        return self._vectors(await asyncio.wrap_future(self._link.request(self._embedding(texts, truncate=truncate))))

    async def encode_async(self, texts: list[str]) -> np.ndarray:
        return (await self.embed(texts))[0]

    def _embedding(self, texts: list[str], *, truncate: bool) -> dict[str, Any]:
        return {"op": "embed", "key": self._key, "texts": texts, "truncate": truncate}

    def _vectors(self, reply: Reply) -> tuple[np.ndarray, list[int]]:
        header, payload = reply
        if "too_long" in header:
            i, count, limit = header["too_long"]
            raise InputTooLong(
                f"input[{i}] has {count} tokens, over the model's {limit}; shorten it, or send "
                '"truncate": true to embed its first tokens only.'
            )
        if header.get("batch"):  # the first request answered by a model call reports it
            self._metrics.observe_batch(*header["batch"])
        rows = np.frombuffer(payload, dtype="<f4").reshape(header["shape"]).astype(np.float32)  # a writable copy
        return rows, list(header["counts"])

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        reply, _ = self._link.call({"op": "count", "key": self._key, "texts": list(texts)})
        return list(reply["counts"])

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        reply, _ = self._link.call({"op": "offsets", "key": self._key, "text": text})
        return [(int(a), int(b)) for a, b in reply["offsets"]]


class ServedEncoders:
    def __init__(self, config: ServeConfig, metrics: Metrics) -> None:
        self.config, self._metrics = config, metrics
        self._lock = threading.Lock()
        self._by_model: dict[str, BatchedEncoder] = {}
        settings = {"threads": config.threads, "backend": config.backend, "compute": config.compute}
        self._link = ModelLink({**settings, "batching": dataclasses.asdict(config.batching)})
        try:
            self.main = self.get(config.model, layers=config.layers)
        except BaseException:
            self._link.close()
            raise
        metrics.watch_queue(self._link.in_flight)

    def get(self, model: str, *, layers: int | None = None, pooling: str | None = None) -> BatchedEncoder:
        """The encoder for `model` (a registered name or folder) at `layers` (and, for a decoder,
        `pooling`), loaded once with the server's settings."""
        model = model if not Path(model).exists() else str(Path(model).resolve())
        key = f"{model}@{layers}" + (f"@{pooling}" if pooling else "")
        with self._lock:
            if key not in self._by_model:
                try:
                    described = self._link.load(key, model, layers, pooling)
                except ModelFailure as exc:
                    raise ModelError(f"Could not load the model '{model}': {exc}") from None
                self._by_model[key] = BatchedEncoder(self._link, key, described, self._metrics)
            return self._by_model[key]

    def for_recipe(self, recipe: Recipe, where: str) -> BatchedEncoder:
        """The served encoder a collection's recipe needs, checked against the identity it was built with."""
        model = self.config.model if recipe.encoder.model in (self.config.model, self.main.source) else recipe.model
        encoder = self.get(model, layers=recipe.encoder.layers, pooling=recipe.encoder.pooling)
        try:
            recipe.check_encoder(encoder.identity, where)
        except RecipeMismatchError as exc:
            raise RecipeMismatchError(
                f"{exc} This server runs its models with --backend {self.config.backend} --compute "
                f"{self.config.compute}; the collection was built with compute {recipe.encoder.compute}: start the "
                "server with the collection's settings, or rebuild the collection with the server's."
            ) from None
        return encoder

    def close(self) -> None:
        self._link.close()
