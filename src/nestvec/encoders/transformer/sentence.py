"""What every backend of a sentence-transformers model shares: tokenizer, identity, the encode loop."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any, Literal

import numpy as np

from nestvec.encoders.base import ModelIdentity, check_texts, progress_bar
from nestvec.encoders.transformer.folder import STFolder
from nestvec.encoders.transformer.layers import check_layers
from nestvec.encoders.transformer.tokenize import Batch, TextTokenizer
from nestvec.errors import InputError, ModelError

# Padded tokens per model batch when the caller gives no budget. On a CPU, batches whose
# activations stay in cache beat bigger ones: 1,024 padded tokens encoded STS-B test 1.1-1.4x
# faster than 8,192 on 2 threads (ONNX Runtime and torch alike) and the demo abstracts 1.2x.
# An accelerator wants large batches (set by the backend).
CPU_BATCH_TOKENS = 1024
ACCELERATOR_BATCH_TOKENS = 8192


class SentenceEncoder:
    """A sentence-transformers folder's tokenizer and pipeline; subclasses run the network.

    Subclasses implement `_embed(batch) -> np.ndarray` (final vectors, normalized when the folder
    asks for it), or `_launch`/`_collect` to keep batches in flight on an accelerator, and may set
    `compute` when their vectors are not the fp32 model's.
    """

    kind = "transformer"
    compute = "fp32"
    batch_tokens = CPU_BATCH_TOKENS  # the budget `encode` uses unless told otherwise

    def __init__(self, folder: STFolder, *, name: str, layers: int | None = None) -> None:
        self.folder = folder
        self.name = name
        self.source = str(folder.root)
        config = folder.config()
        # None: every layer. A cut model's vectors differ from the full model's, so `layers` is
        # part of its identity (and so of every cache key and collection check built on it).
        total = config.get("num_hidden_layers", config.get("n_layer"))
        if total is None and layers is not None:  # never run a full model under a cut model's name
            raise ModelError(f"{folder.root}'s config.json has no layer count (num_hidden_layers); leave layers unset.")
        self.layers = check_layers(layers, int(total)) if total is not None else None
        model_max = int(config.get("max_position_embeddings", folder.max_seq_length))
        self.max_tokens = min(folder.max_seq_length, model_max)
        pad_id = config.get("pad_token_id")
        self.tokenizer = TextTokenizer(
            folder.transformer_dir / "tokenizer.json",
            max_tokens=self.max_tokens,
            lowercase=folder.do_lower_case,
            pad_id=int(pad_id) if pad_id is not None else 0,
        )
        self.uses_token_types = int(config.get("type_vocab_size", 0) or 0) > 0
        hidden = int(config["hidden_size"]) * len(folder.pooling_modes)
        self.dim = folder.dense[-1].out_features if folder.dense else hidden

    @cached_property
    def identity(self) -> ModelIdentity:
        details: dict[str, Any] = {
            "pooling": list(self.folder.pooling_modes),
            "dense": [s.out_features for s in self.folder.dense],
            "lowercase": self.folder.do_lower_case,
            "files": self.folder.files_sha256,
        }
        # fp32 backends agree to ~1e-6, so they share one identity and collections may switch
        # between them; lower precision changes the vectors and must not mix with fp32 ones.
        if self.compute != "fp32":
            details["compute"] = self.compute
        if self.layers is not None:
            details["layers"] = self.layers
        return ModelIdentity(
            kind=self.kind,
            name=self.name,
            weights_sha256=self.folder.weights_sha256(),
            dim=self.dim,
            max_tokens=self.max_tokens,
            normalized=self.folder.normalize,
            details=details,
        )

    @property
    def special_tokens(self) -> int:
        return self.tokenizer.special_tokens

    @property
    def prompts(self) -> dict[str, str]:
        """The query and document prompts the model folder declares (see nestvec.encoders.prompts)."""
        return dict(self.folder.prompts)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return self.tokenizer.token_counts(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.tokenizer.token_offsets(text)

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: bool | None = None,
        max_batch_tokens: int | Literal["auto"] | None = "auto",
    ) -> np.ndarray:
        """Vectors in input order. Batches hold at most `batch_size` texts and, unless
        `max_batch_tokens` is None, at most that many padded tokens (but always one text);
        "auto" is the backend's `batch_tokens`."""
        check_texts(texts)
        if max_batch_tokens == "auto":
            max_batch_tokens = self.batch_tokens
        if batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}.")
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise InputError(f"max_batch_tokens must be ≥ 1 or None, got {max_batch_tokens}.")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out

        bar = progress_bar(len(texts), progress, unit="text")
        batches = self.tokenizer.batches(texts, batch_size, max_batch_tokens=max_batch_tokens)
        pending: deque[tuple[np.ndarray, Any]] = deque()

        def collect_down_to(left: int) -> None:
            while len(pending) > left:
                positions, handle = pending.popleft()
                out[positions] = self._collect(handle)
                bar.update(len(positions))

        with bar, self._running():
            for batch in prefetched(batches) if len(texts) > batch_size else batches:
                pending.append((batch.positions, self._launch(batch)))
                collect_down_to(self.in_flight)
            collect_down_to(0)
        return out

    # Batches launched before the oldest one's vectors are collected. 0 on CPU; an accelerator
    # keeps a few in flight so it never idles while the host prepares or copies a batch.
    in_flight = 0

    def _launch(self, batch: Batch) -> Any:
        """Start embedding `batch`; `_collect` turns what this returns into its vectors."""
        return self._embed(batch)

    def _collect(self, handle: Any) -> np.ndarray:
        return np.asarray(handle)

    def _running(self) -> Any:
        """Context held around a whole encode call (torch's inference mode, for instance)."""
        from contextlib import nullcontext

        return nullcontext()

    def _embed(self, batch: Batch) -> np.ndarray:
        raise NotImplementedError


def prefetched(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    """Pad the next batches on a helper thread while the model (which releases the GIL) runs this one."""
    import queue
    import threading

    slots: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Batch | BaseException | None) -> bool:
        while not stop.is_set():  # the consumer may have left: never block on a full queue
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fill() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    worker = threading.Thread(target=fill, name="nestvec-batches", daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
