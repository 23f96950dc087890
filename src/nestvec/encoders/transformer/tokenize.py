"""A thin wrapper over a `tokenizers` tokenizer.json: truncated ids, untruncated counts, offsets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from nestvec.errors import ModelError

# Texts tokenized at once; bounds the memory held by Encoding objects on huge inputs.
CHUNK = 16384

# A batch ends where the next (shorter) text would fill less than this share of the batch's width.
# Sorted corpora do not notice; a server's micro-batch of unrelated texts does: 8 random STS-B
# sentences on one ONNX Runtime thread, 6.70 ms each in one padded batch, 4.43 at 0.7 (0.5: 4.75,
# 0.85: 4.50, one text per batch: 5.22; bench/results/fill.json, docs/benchmarks.md).
MIN_FILL = 0.7


@dataclass(frozen=True)
class Batch:
    """One padded model batch and the input positions its rows belong to."""

    positions: np.ndarray
    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray


class TextTokenizer:
    """Tokenizes as sentence-transformers does: strip, optional lowercase, truncate to max_tokens."""

    def __init__(self, path: Path, *, max_tokens: int, lowercase: bool, pad_id: int) -> None:
        try:
            self._full = Tokenizer.from_file(str(path))
            self._truncating = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files
            raise ModelError(f"{path} is not a valid tokenizer.json: {exc}") from exc
        for tok in (self._full, self._truncating):
            tok.no_padding()
            tok.no_truncation()
        self._truncating.enable_truncation(max_length=max_tokens)
        self.max_tokens = max_tokens
        self.lowercase = lowercase
        self.pad_id = pad_id
        self.special_tokens = self._full.num_special_tokens_to_add(is_pair=False)
        # Single texts get segment 0 from every template we know; copying type ids only where a
        # template says otherwise halves the per-row work of padding.
        self._typed = any(self._full.encode("a").type_ids)

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        cleaned = [str(t).strip() for t in texts]
        return [t.lower() for t in cleaned] if self.lowercase else cleaned

    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        return self._truncating.encode_batch(self._prepare(texts))

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._full.encode_batch(self._prepare(texts))]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        # Offsets refer to the stripped (and maybe lowercased) text; lowercasing keeps lengths for
        # the scripts our models see, and the leading strip is added back.
        shift = len(text) - len(text.lstrip())
        enc = self._full.encode(self._prepare([text])[0], add_special_tokens=False)
        return [(a + shift, b + shift) for a, b in enc.offsets]

    def batches(self, texts: Sequence[str], batch_size: int, *, max_batch_tokens: int | None = None) -> Iterator[Batch]:
        """Padded batches, longest texts first so padding waste is small and peak memory shows at once.

        A batch holds at most `batch_size` texts, at most `max_batch_tokens` padded tokens (one
        text always fits) and no text shorter than MIN_FILL of its longest. Inputs longer than
        CHUNK texts are tokenized chunk by chunk, the next chunk on a helper thread while the
        caller runs the model on this one (tokenizers releases the GIL), and sorted within each
        chunk.
        """
        if len(texts) <= CHUNK:
            yield from self._chunk_batches(self.encode(texts), 0, batch_size, max_batch_tokens)
            return
        from concurrent.futures import ThreadPoolExecutor

        starts = range(0, len(texts), CHUNK)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nestvec-tokenize") as pool:
            pending = pool.submit(self.encode, texts[:CHUNK])
            for start in starts:
                encodings = pending.result()
                if start + CHUNK < len(texts):
                    pending = pool.submit(self.encode, texts[start + CHUNK : start + 2 * CHUNK])
                yield from self._chunk_batches(encodings, start, batch_size, max_batch_tokens)

    def _chunk_batches(
        self, encodings: list[Encoding], offset: int, batch_size: int, max_batch_tokens: int | None
    ) -> Iterator[Batch]:
        # len(encoding) counts in Rust; e.ids would build a Python list per text just to count it.
        lengths = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])
            size = batch_size if max_batch_tokens is None else max(1, min(batch_size, max_batch_tokens // width))
            rows = order[start : start + size]
            rows = rows[: max(1, int(np.count_nonzero(lengths[rows] >= MIN_FILL * width)))]
            start += len(rows)
            yield self._pad([encodings[i] for i in rows], rows + offset, lengths[rows], width)

    def _pad(self, encodings: list[Encoding], positions: np.ndarray, lengths: np.ndarray, width: int) -> Batch:
        filled = np.arange(width) < lengths[:, None]
        total = int(lengths.sum())
        # One flat pass in C over the rows' ids, scattered row-major into the padded block.
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        ids[filled] = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=total)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        if self._typed:
            types[filled] = np.fromiter(chain.from_iterable(e.type_ids for e in encodings), np.int64, count=total)
        return Batch(positions, ids, filled.astype(np.int64), types)
