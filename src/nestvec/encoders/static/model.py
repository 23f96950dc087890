"""Static encoders: one vector per token, averaged. Inference needs numpy and tokenizers only.

A static model is a folder: config.json (kind nestvec.static), tokenizer.json and
embeddings.safetensors holding the (vocabulary, dim) table, as float32, float16 or int8 with a
scale per row. The token weights (SIF) are folded into the table at distillation, so encoding is
a plain mean of the rows of a text's tokens, then L2 normalization.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

from nestvec.encoders.base import ModelIdentity, check_texts
from nestvec.errors import InputError, ModelError
from nestvec.files import config_header, hash_file, new_folder, read_config, without_header, write_json_atomic
from nestvec.registry import unknown_name_message

KIND = "static"  # config.json's kind (nestvec.static) and the identity's
OLD_KINDS = ("static-model",)  # what nestvec 0.1 wrote
TABLE = "embeddings.safetensors"
STORAGE = ("float32", "float16", "int8")
_GROUP_TOKENS = 1024  # measured: 256-1024 best on 2 cores; 8192 loses a quarter
# Texts up to this many tokens are pooled by length buckets, longer ones in cache-sized groups.
_SHORT_TOKENS = 32
# Below this, starting processes (about a second each) costs more than it saves.
_PROCESS_MIN_TEXTS = 100_000


@dataclass(frozen=True)
class StaticTable:
    """The token table as stored: float32/float16 rows, or int8 rows with a float32 scale each."""

    rows: np.ndarray
    scales: np.ndarray | None = None

    @classmethod
    def quantized(cls, table: np.ndarray, storage: str) -> StaticTable:
        if storage not in STORAGE:
            raise InputError(unknown_name_message("storage", storage, list(STORAGE)))
        if storage == "float32":
            return cls(np.ascontiguousarray(table, dtype=np.float32))
        if storage == "float16":
            return cls(table.astype(np.float16))
        scales = np.maximum(np.abs(table).max(axis=1), 1e-12) / 127.0
        return cls(np.round(table / scales[:, None]).astype(np.int8), scales.astype(np.float32))

    def gather_sum(self, ids: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Sum of the rows of each text's tokens; `starts` are the offsets of each text in `ids`."""
        rows = self.rows[ids].astype(np.float32, copy=False)
        if self.scales is not None:
            rows *= self.scales[ids, None]
        return np.add.reduceat(rows, starts, axis=0)

    def gather_sum_equal(self, ids: np.ndarray) -> np.ndarray:
        """Sums of the rows of texts of equal length, given as an (n, length) id matrix."""
        rows = self.rows[ids].astype(np.float32, copy=False)
        if self.scales is not None:
            rows *= self.scales[ids, None]
        return rows.sum(axis=1)

    def floats(self) -> np.ndarray:
        rows = self.rows.astype(np.float32)
        return rows * self.scales[:, None] if self.scales is not None else rows

    def tensors(self) -> dict[str, np.ndarray]:
        return {"embeddings": self.rows} | ({"scales": self.scales} if self.scales is not None else {})


class StaticEncoder:
    """Mean of token vectors, L2-normalized. Satisfies the Encoder protocol."""

    def __init__(self, folder: Path, *, name: str | None = None) -> None:
        config = read_config(folder, KIND, aliases=OLD_KINDS) if (folder / "config.json").is_file() else None
        if config is None:
            raise ModelError(f"{folder} is not a static model folder (config.json is missing).")
        try:
            tensors = load_file(str(folder / TABLE))
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # safetensors and tokenizers raise bare exceptions on bad files
            raise ModelError(f"{folder} holds an unreadable static model: {exc}") from exc
        self.table = StaticTable(tensors["embeddings"], tensors.get("scales"))
        self.folder, self.config = folder, config
        self.name = name or str(config.get("name", folder.name))
        self.source = str(folder)
        self.dim = int(self.table.rows.shape[1])
        self.max_tokens = int(config.get("max_tokens", 512))
        self.lowercase = bool(config.get("lowercase", False))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._digest = hash_file(folder / TABLE).hexdigest()
        self._files = {"tokenizer.json": hash_file(folder / "tokenizer.json").hexdigest()}  # token ids index the table
        if self.table.rows.shape[0] < self.tokenizer.get_vocab_size():
            raise ModelError(
                f"{folder}: the table has {self.table.rows.shape[0]} rows but the tokenizer "
                f"{self.tokenizer.get_vocab_size()} tokens; the folder is inconsistent."
            )

    @functools.cached_property
    def _truncating(self) -> Tokenizer:
        """A second tokenizer that truncates in Rust rather than slicing every list here; parsed on
        first use, since parsing tokenizer.json is a good part of the model's load time."""
        truncating = Tokenizer.from_str(self.tokenizer.to_str())
        truncating.enable_truncation(self.max_tokens)
        return truncating

    def save_as(self, folder: str | Path, *, storage: str) -> StaticEncoder:
        """A copy of this model with its table stored as float32, float16 or int8 (a row scale each)."""
        target = new_folder(folder)
        config = without_header(self.config)
        save_static(target, tokenizer=self.tokenizer, table=self.table.floats(), storage=storage, config=config)
        return StaticEncoder(target)

    @property
    def identity(self) -> ModelIdentity:
        details = {"storage": str(self.table.rows.dtype), "lowercase": self.lowercase, "files": self._files}
        return ModelIdentity(KIND, self.name, self._digest, self.dim, self.max_tokens, True, details)

    @property
    def special_tokens(self) -> int:
        return 0

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        # Lowercasing keeps character offsets for the scripts these models see; surrounding
        # whitespace is left in place, since the tokenizer never makes tokens of it.
        return [t.lower() for t in texts] if self.lowercase else list(texts)

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        if len(texts) >= 256 and not _tokenizers_parallel():
            # Someone (an app that forks, or Model2Vec) turned the tokenizers' own threads off
            # process-wide; slices on our threads (encoding releases the GIL) get the cores back.
            workers = min(4, os.cpu_count() or 1)
            step = -(-len(texts) // workers)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = pool.map(self._ids_serial, [texts[i : i + step] for i in range(0, len(texts), step)])
                return [ids for part in parts for ids in part]
        return self._ids_serial(texts)

    def _ids_serial(self, texts: Sequence[str]) -> list[list[int]]:
        # encode_batch_fast skips character offsets, which pooling never needs (tokenizers >= 0.21)
        encode = getattr(self._truncating, "encode_batch_fast", self._truncating.encode_batch)
        return [e.ids for e in encode(self._prepare(texts), add_special_tokens=False)]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(self._prepare(texts), add_special_tokens=False)]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self.tokenizer.encode(self._prepare([text])[0], add_special_tokens=False).offsets)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 1024, progress: bool | None = None, processes: int = 1
    ) -> np.ndarray:
        """Vectors in input order. `processes` > 1 spreads inputs of 100,000+ texts over that many
        processes (each loads the model; worth it with more cores than one process keeps busy)."""
        check_texts(texts)
        if processes < 1:
            raise InputError(f"processes must be ≥ 1, got {processes}.")
        if processes > 1 and len(texts) >= _PROCESS_MIN_TEXTS:
            from nestvec.encoders.static.processes import encode_in_processes

            return encode_in_processes(self.folder, texts, self.dim, processes=processes, batch_size=batch_size)
        step = max(batch_size, 1024)
        if len(texts) <= step:  # one chunk (a query, a small batch): nothing to overlap, no thread
            return self._pool_chunk(self._ids(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), step)
        # Two stages overlap: the next chunk is tokenized (Rust, GIL released) while this one is
        # pooled (numpy, GIL released).
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._ids, texts[:step])
            for start in starts:
                ids = pending.result()
                if start + step < len(texts):
                    pending = pool.submit(self._ids, texts[start + step : start + 2 * step])
                out[start : start + step] = self._pool_chunk(ids)
        return out

    def _pool_chunk(self, ids: list[list[int]]) -> np.ndarray:
        counts = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        out = np.zeros((len(ids), self.dim), dtype=np.float32)  # a text with no known token stays zero
        short = (counts > 0) & (counts <= _SHORT_TOKENS)
        # Short texts of equal length are pooled together, one gather per length (as Model2Vec
        # does): measured 11 vs 19 ms on STS-B test's 2,552 sentences, whose per-text overhead the
        # grouped path below pays; long texts keep the grouped path, whose gathers stay in cache.
        for length in sorted(set(counts[short].tolist())):  # np.unique would import numpy.ma (50 ms)
            rows = np.flatnonzero(counts == length)
            step = max(1, _GROUP_TOKENS * 8 // int(length))
            for lo in range(0, len(rows), step):
                part = rows[lo : lo + step]
                out[part] = _normalized(self.table.gather_sum_equal(np.array([ids[i] for i in part], dtype=np.int64)))
        long = np.flatnonzero(counts > _SHORT_TOKENS)
        if len(long):
            out[long] = self._pool_grouped([ids[i] for i in long], counts[long])
        return out

    def _pool_grouped(self, ids: list[list[int]], counts: np.ndarray) -> np.ndarray:
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(counts.sum()))
        ends = np.cumsum(counts)
        first = 0
        while first < len(ids):  # groups of texts of about _GROUP_TOKENS tokens: the gathered rows stay in cache
            last = max(first + 1, int(np.searchsorted(ends, ends[first] - counts[first] + _GROUP_TOKENS, "right")))
            self._pool(out[first:last], flat, counts[first:last], int(ends[first] - counts[first]))
            first = last
        return out

    def _pool(self, out: np.ndarray, flat: np.ndarray, counts: np.ndarray, offset: int) -> None:
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        out[:] = _normalized(self.table.gather_sum(flat[offset : offset + int(counts.sum())], starts))


def _tokenizers_parallel() -> bool:
    return os.environ.get("TOKENIZERS_PARALLELISM", "true").strip().lower() not in ("false", "0", "off", "no")


def _normalized(sums: np.ndarray) -> np.ndarray:
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def save_static(folder: Path, *, tokenizer: Tokenizer, table: np.ndarray, storage: str, config: dict[str, Any]) -> Path:
    """Write a static model folder (config.json last, so a folder with one is complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(StaticTable.quantized(table, storage).tensors(), str(folder / TABLE))
    tokenizer.save(str(folder / "tokenizer.json"))
    write_json_atomic(folder / "config.json", {**config_header(KIND), **config, "storage": storage})
    return folder
