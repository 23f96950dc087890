"""The server's encoders: one per model, each behind its micro-batcher, shared by every route.

/v1/embeddings and every served collection (queries and documents alike) embed through these,
so a collection's queries run with the server's --backend/--compute/--threads and are batched
with everyone else's. A collection whose recipe the server's encoder does not match is refused
at start-up, naming what differs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nestvec.encoders import Encoder, ModelIdentity, load_encoder
from nestvec.encoders.prompts import model_prompts
from nestvec.errors import RecipeMismatchError
from nestvec.recipe import Recipe
from nestvec.serve.batcher import MicroBatcher
from nestvec.serve.metrics import Metrics
from nestvec.serve.state import ServeConfig


class BatchedEncoder:
    """An Encoder whose `encode` waits its turn in the micro-batcher; everything else is the model's."""

    def __init__(self, encoder: Encoder, batcher: MicroBatcher) -> None:
        self.model, self.batcher = encoder, batcher
        self.name, self.source, self.dim, self.max_tokens = (
            encoder.name,
            encoder.source,
            encoder.dim,
            encoder.max_tokens,
        )

    @property
    def identity(self) -> ModelIdentity:
        return self.model.identity

    @property
    def prompts(self) -> dict[str, str]:
        return model_prompts(self.model)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return self.model.encode(texts)
        return self.batcher.embed_blocking(texts, self._tokens(texts))

    async def encode_async(self, texts: list[str]) -> np.ndarray:
        """`encode` for the event loop: it awaits the batcher without holding a thread."""
        return await self.batcher.embed(texts, self._tokens(texts))

    def _tokens(self, texts: list[str]) -> int:
        """What the batch will cost the model: tokens after truncation (the batcher's budget unit)."""
        return sum(min(c, self.max_tokens) for c in self.model.token_counts(texts))

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return self.model.token_counts(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.model.token_offsets(text)

    @property
    def special_tokens(self) -> int:
        return self.model.special_tokens


class ServedEncoders:
    def __init__(self, config: ServeConfig, metrics: Metrics) -> None:
        self.config, self._metrics = config, metrics
        self._lock = threading.Lock()
        self._by_model: dict[tuple[str, int | None], BatchedEncoder] = {}
        self.main = self.get(config.model, layers=config.layers)
        metrics.watch_queue(self.depth)

    def depth(self) -> int:
        """Requests waiting for a model, over all of them."""
        return sum(e.batcher.depth() for e in list(self._by_model.values()))

    def get(self, model: str, *, layers: int | None = None) -> BatchedEncoder:
        """The encoder for `model` (a registered name or folder) at `layers`, loaded once with the
        server's settings."""
        key = (model if not Path(model).exists() else str(Path(model).resolve()), layers)
        with self._lock:
            if key not in self._by_model:
                config = self.config
                encoder = load_encoder(
                    model, threads=config.threads, backend=config.backend, compute=config.compute, layers=layers
                )
                batcher = MicroBatcher(
                    lambda texts: encoder.encode(texts, batch_size=64, progress=False),
                    config.batching,
                    observe=self._metrics.observe_batch,
                )
                self._by_model[key] = BatchedEncoder(encoder, batcher)
            return self._by_model[key]

    def for_recipe(self, recipe: Recipe, where: str) -> BatchedEncoder:
        """The served encoder a collection's recipe needs, checked against the identity it was built with."""
        model = self.config.model if recipe.encoder.model in (self.config.model, self.main.source) else recipe.model
        encoder = self.get(model, layers=recipe.encoder.layers)
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
        with self._lock:
            for encoder in self._by_model.values():
                encoder.batcher.close()
