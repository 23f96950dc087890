"""Word vectors (word2vec, GloVe, fastText .vec) in a compact folder that opens instantly.

`convert` streams a vector file into a folder of raw little-endian arrays that are memory-
mapped, not read, when opened (as Magnitude does), so opening a million-word file costs
milliseconds and almost no RAM until words are looked up:

  vectors.f32 (count × dim) in file order (files are frequency-sorted), norms.f32, words.bin +
  offsets.u64 (the words, UTF-8), table.u32 (an open-addressing hash table: crc32(word) -> row + 1),
  ngrams.f32 (buckets × dim): for each hashed character n-gram (3-5 chars of "<word>"), the mean
  unit vector of the 100,000 most frequent words containing it; unknown words get the mean of
  their n-grams' rows, so typos and rare forms land near their relatives.

Raw arrays rather than safetensors because safetensors cannot be memory-mapped from numpy;
shapes, dtypes and a SHA-256 of the vectors live in config.json, written last.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nestvec.encoders.base import ModelIdentity, check_texts
from nestvec.encoders.wordvectors.files import inspect, rows
from nestvec.errors import InputError
from nestvec.files import config_header, new_folder, read_config, write_folder_whole, write_json_atomic

KIND = "wordvectors"  # config.json's kind (nestvec.wordvectors) and the identity's
OLD_KINDS = ("word-vectors",)  # what nestvec 0.1 wrote
_WORD = re.compile(r"\w+(?:[-']\w+)*", re.UNICODE)
NGRAMS = (3, 5)


def ngram_buckets(word: str, buckets: int) -> list[int]:
    marked = f"<{word}>"
    return [
        zlib.crc32(marked[i : i + n].encode("utf-8")) % buckets
        for n in range(NGRAMS[0], NGRAMS[1] + 1)
        for i in range(len(marked) - n + 1)
    ]


def convert(
    source: str | Path, target: str | Path, *, fmt: str = "auto", buckets: int = 1 << 16, ngram_words: int = 100_000
) -> Path:
    """Convert a word2vec/GloVe/fastText file into the compact folder (atomically: all or nothing)."""
    info = inspect(source, fmt)
    target = new_folder(target)

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        words, digest = _write_vectors(info, tmp)
        vectors = np.memmap(tmp / "vectors.f32", dtype="<f4", mode="r", shape=(len(words), info.dim))
        norms = np.linalg.norm(vectors, axis=1).astype("<f4")
        norms.tofile(tmp / "norms.f32")
        encoded = [w.encode("utf-8") for w in words]
        np.cumsum([0, *map(len, encoded)], dtype="<u8").tofile(tmp / "offsets.u64")
        (tmp / "words.bin").write_bytes(b"".join(encoded))
        _hash_table(encoded).tofile(tmp / "table.u32")
        _ngram_table(words[:ngram_words], vectors, norms, buckets).tofile(tmp / "ngrams.f32")
        config = {"name": Path(source).stem, "source_format": info.format, "dim": info.dim, "count": len(words)}
        config |= {"buckets": buckets, "vectors_sha256": digest}
        write_json_atomic(tmp / "config.json", {**config_header(KIND), **config})

    write_folder_whole(target, write)
    return target


def _write_vectors(info: object, folder: Path) -> tuple[list[str], str]:
    seen: set[str] = set()
    words: list[str] = []
    digest = hashlib.sha256()
    with (folder / "vectors.f32").open("wb") as fh:
        for word, vector in rows(info):  # type: ignore[arg-type]
            if word in seen:  # keep the first (most frequent) row of a repeated word
                continue
            seen.add(word)
            words.append(word)
            data = vector.astype("<f4").tobytes()
            digest.update(data)
            fh.write(data)
    if not words:
        raise InputError(f"{getattr(info, 'path', '')} holds no word vectors.")
    return words, digest.hexdigest()


def _hash_table(encoded: list[bytes]) -> np.ndarray:
    size = 1 << max(4, (2 * len(encoded) - 1).bit_length())  # at most half full: short probe runs
    table = np.zeros(size, dtype="<u4")
    mask = size - 1
    for row, word in enumerate(encoded):
        slot = zlib.crc32(word) & mask
        while table[slot]:
            slot = (slot + 1) & mask
        table[slot] = row + 1
    return table


def _ngram_table(words: list[str], vectors: np.ndarray, norms: np.ndarray, buckets: int) -> np.ndarray:
    pairs = [(b, row) for row, word in enumerate(words) for b in set(ngram_buckets(word, buckets))]
    table = np.zeros((buckets, vectors.shape[1]), dtype=np.float64)
    counts = np.zeros(buckets, dtype=np.int64)
    order = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    order = order[np.argsort(order[:, 0], kind="stable")]
    for lo in range(0, len(order), 200_000):  # bounded memory: a chunk of rows at a time
        chunk = order[lo : lo + 200_000]
        unit = vectors[chunk[:, 1]] / np.maximum(norms[chunk[:, 1], None], 1e-12)
        keys, starts = np.unique(chunk[:, 0], return_index=True)
        table[keys] += np.add.reduceat(unit, starts, axis=0)
        counts[keys] += np.diff(np.append(starts, len(chunk)))
    return (table / np.maximum(counts, 1)[:, None]).astype("<f4")


class WordVectors:
    """A converted folder, memory-mapped. Satisfies the Encoder protocol (mean of word vectors)."""

    def __init__(self, folder: str | Path, *, sif: float | None = None) -> None:
        folder = Path(folder)
        config = read_config(folder, KIND, aliases=OLD_KINDS)
        self.folder, self.config, self.sif = folder, config, sif
        self.name, self.source = str(config["name"]), str(folder)
        self.dim, self.count = int(config["dim"]), int(config["count"])
        self.max_tokens = 1 << 20
        self.buckets = int(config["buckets"])
        self.vectors = np.memmap(folder / "vectors.f32", dtype="<f4", mode="r", shape=(self.count, self.dim))
        self.norms = np.memmap(folder / "norms.f32", dtype="<f4", mode="r", shape=(self.count,))
        self._offsets = np.memmap(folder / "offsets.u64", dtype="<u8", mode="r")
        self._words = np.memmap(folder / "words.bin", dtype=np.uint8, mode="r")
        self._table = np.memmap(folder / "table.u32", dtype="<u4", mode="r")
        self._ngrams = np.memmap(folder / "ngrams.f32", dtype="<f4", mode="r", shape=(self.buckets, self.dim))

    # -- lookups -------------------------------------------------------------------------------
    def word(self, row: int) -> str:
        return bytes(self._words[int(self._offsets[row]) : int(self._offsets[row + 1])]).decode("utf-8")

    def row(self, word: str) -> int | None:
        """The word's row, trying it as written and then lowercased; None when unknown."""
        for candidate in dict.fromkeys((word, word.lower())):
            key = candidate.encode("utf-8")
            mask = len(self._table) - 1
            slot = zlib.crc32(key) & mask
            while entry := int(self._table[slot]):
                if bytes(self._words[int(self._offsets[entry - 1]) : int(self._offsets[entry])]) == key:
                    return entry - 1
                slot = (slot + 1) & mask
        return None

    def __contains__(self, word: str) -> bool:
        return self.row(word) is not None

    def vector(self, word: str) -> np.ndarray:
        """The word's vector; an unknown word gets the mean of its character n-grams' vectors."""
        row = self.row(word)
        if row is not None:
            return np.array(self.vectors[row], dtype=np.float32)
        rows = self._ngrams[ngram_buckets(word.lower(), self.buckets)]
        return np.asarray(rows.mean(axis=0), dtype=np.float32)

    def most_similar(self, query: str | np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """The k words with the highest cosine to a word (left out of its own answer) or a vector."""
        vector = self.vector(query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
        scores = (self.vectors @ vector) / np.maximum(self.norms * np.linalg.norm(vector), 1e-12)
        own = self.row(query) if isinstance(query, str) else None
        if own is not None:
            scores[own] = -np.inf
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.word(int(i)), float(scores[i])) for i in top]

    # -- Encoder protocol ------------------------------------------------------------------------
    @property
    def identity(self) -> ModelIdentity:
        details = {"sif": self.sif, "buckets": self.buckets}
        return ModelIdentity(
            KIND, self.name, str(self.config["vectors_sha256"]), self.dim, self.max_tokens, True, details
        )

    @property
    def special_tokens(self) -> int:
        return 0

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) for t in texts]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]

    def encode(self, texts: Sequence[str], *, batch_size: int = 256, progress: bool | None = None) -> np.ndarray:
        """Mean of each text's word vectors (SIF-weighted by Zipf rank when `sif` is set), L2-normalized."""
        check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _WORD.findall(text)
            if not words:
                continue
            total = np.zeros(self.dim, dtype=np.float64)
            for word in words:
                row = self.row(word)
                weight = 1.0 if self.sif is None or row is None else self.sif / (self.sif + _zipf(row, self.count))
                total += weight * (self.vectors[row] if row is not None else self.vector(word))
            norm = np.linalg.norm(total)
            out[i] = total / norm if norm > 0 else 0.0
        return out


def _zipf(row: int, count: int) -> float:
    return 1.0 / ((row + 1) * (np.log(count) + 0.5772))  # 1/rank over the harmonic number
