"""Readers of classic word-vector files: word2vec text and binary, GloVe, fastText .vec.

word2vec text and fastText .vec start with a "count dim" line; GloVe has none (detected);
word2vec binary has the same header followed by "word " + dim little-endian float32 per row.
Rows stream out one at a time, so converting a large file needs little memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nestvec.errors import InputFileError
from nestvec.registry import unknown_name_message

FORMATS = ("auto", "text", "binary", "glove")


@dataclass(frozen=True)
class WordFile:
    path: Path
    format: str  # text, binary or glove
    dim: int
    count: int | None  # from the header; GloVe files have none


def inspect(path: str | Path, fmt: str = "auto") -> WordFile:
    path = Path(path)
    if fmt not in FORMATS:
        raise InputFileError(path, None, unknown_name_message("word-vector format", fmt, list(FORMATS)))
    if not path.is_file():
        raise InputFileError(path, None, "no such file.")
    with path.open("rb") as fh:
        first = fh.readline()
    parts = first.split()
    header = len(parts) == 2 and all(p.isdigit() for p in parts)
    binary = _looks_binary(path, len(first))
    if fmt == "auto":
        fmt = ("binary" if binary else "text") if header else "glove"
    elif fmt == "binary" and not binary:
        raise InputFileError(path, 2, "--format binary, but the rows after the header are text; use --format text.")
    elif fmt != "binary" and binary:
        raise InputFileError(path, 2, f"--format {fmt}, but the rows are binary; use --format binary.")
    if fmt in ("text", "binary"):
        if not header:
            raise InputFileError(path, 1, f"expected a 'count dim' header line, found {first[:80]!r}.")
        return WordFile(path, fmt, int(parts[1]), int(parts[0]))
    if len(parts) < 2:
        raise InputFileError(path, 1, f"expected 'word v1 v2 ...', found {first[:80]!r}.")
    return WordFile(path, "glove", len(parts) - 1, None)


def _looks_binary(path: Path, skip: int) -> bool:
    with path.open("rb") as fh:
        fh.seek(skip)
        sample = fh.read(4096)
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(sample) - 4  # not just a character cut at the sample's end
    return False


def rows(info: WordFile) -> Iterator[tuple[str, np.ndarray]]:
    """(word, float32 vector) in file order."""
    if info.format == "binary":
        yield from _binary_rows(info)
        return
    try:
        yield from _text_rows(info)
    except UnicodeDecodeError as exc:
        raise InputFileError(info.path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start}).") from None


def _text_rows(info: WordFile) -> Iterator[tuple[str, np.ndarray]]:
    with info.path.open("r", encoding="utf-8", errors="strict") as fh:
        if info.format == "text":
            fh.readline()
        for number, line in enumerate(fh, start=2 if info.format == "text" else 1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if len(parts) != info.dim + 1:
                raise InputFileError(
                    info.path, number, f"expected a word and {info.dim} numbers, found {len(parts) - 1} values."
                )
            try:
                vector = np.asarray(parts[1:], dtype=np.float32)
            except ValueError as exc:
                raise InputFileError(info.path, number, f"a value is not a number ({exc}).") from exc
            yield parts[0], _finite(vector, info.path, number, parts[0])


def _binary_rows(info: WordFile) -> Iterator[tuple[str, np.ndarray]]:
    size = 4 * info.dim
    with info.path.open("rb") as fh:
        fh.readline()
        for number in range(info.count or 0):
            word = bytearray()
            while (char := fh.read(1)) != b" ":
                if not char:
                    raise InputFileError(info.path, None, f"the file ends inside row {number + 1} of {info.count}.")
                if char != b"\n":  # some writers end each row with a newline
                    word += char
            data = fh.read(size)
            if len(data) != size:
                raise InputFileError(
                    info.path, None, f"row {number + 1} ('{word.decode(errors='replace')}') is cut short."
                )
            try:
                text = word.decode("utf-8")
            except UnicodeDecodeError:
                raise InputFileError(
                    info.path, None, f"row {number + 1}'s word is not UTF-8; is the file word2vec binary?"
                ) from None
            yield text, _finite(np.frombuffer(data, dtype="<f4").astype(np.float32), info.path, None, text)


def _finite(vector: np.ndarray, path: Path, line: int | None, word: str) -> np.ndarray:
    """A NaN or infinity would turn every text holding the word into a zero vector, silently."""
    if not np.isfinite(vector).all():
        bad = vector[~np.isfinite(vector)][0]
        raise InputFileError(path, line, f"the vector of {word!r} holds {bad}; every value must be finite.")
    return vector
