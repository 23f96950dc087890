"""The Encoder protocol every model kind implements."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nestvec.encoders.identity import ModelIdentity, file_differences
from nestvec.errors import InputError

__all__ = ["Encoder", "ModelIdentity", "Wrapper", "check_texts", "file_differences", "progress_bar"]


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into float32 vectors of shape (len(texts), dim), in input order."""

    name: str
    source: str  # what load_encoder takes to load this encoder again (a registered name or a folder)
    dim: int
    max_tokens: int

    @property
    def identity(self) -> ModelIdentity: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray: ...

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text including special tokens, without truncation."""
        ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every content token of `text`, without truncation."""
        ...

    @property
    def special_tokens(self) -> int:
        """How many special tokens the encoder adds around each text."""
        ...


class Wrapper:
    """An encoder around another (a cache, a prompt): all but `encode` is the inner model's."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name, self.source, self.dim, self.max_tokens = inner.name, inner.source, inner.dim, inner.max_tokens

    @property
    def identity(self) -> ModelIdentity:
        return self.inner.identity

    @property
    def special_tokens(self) -> int:
        return self.inner.special_tokens

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return self.inner.token_counts(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_offsets(text)


def check_texts(texts: Sequence[str]) -> None:
    """A lone string (which would encode character by character), anything that is not a string
    (None, numbers, bytes: a tokenizer would fail deep inside, or embed its repr), and strings
    holding an unpaired surrogate (Python and JSON allow them; no tokenizer does)."""
    if isinstance(texts, str):
        raise InputError("encode() takes a list of texts, got one string; wrap it: encode([text]).")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(
                f"encode() takes strings; text {i} is {type(text).__name__} ({text!r:.60}). "
                "Convert or drop it before encoding."
            )
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(
                    f"text {i} is not valid Unicode: an unpaired surrogate at position {exc.start} ({text!r:.60}). "
                    "Decode the source with errors='replace', or drop the text."
                ) from None


def progress_bar(total: int, progress: bool | None, *, unit: str, desc: str | None = None, initial: int = 0) -> Any:
    """A tqdm bar on stderr, on a terminal only. By default (`progress=None`) it appears once the job
    has run for a second, whatever its size, so quick calls print nothing and slow ones never look stuck."""
    from tqdm.auto import tqdm

    shown = progress is not False and sys.stderr.isatty()
    return tqdm(
        total=total, initial=initial, unit=unit, desc=desc, disable=not shown, delay=0.0 if progress else 1.0,
        mininterval=0.2,
    )  # fmt: skip
