"""Long-document policy: truncate at the model's window, or split into overlapping token windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nestvec.encoders.base import Encoder
from nestvec.errors import InputError

MODES = ("truncate", "split")


@dataclass(frozen=True)
class LongDocuments:
    """How to handle documents longer than the model's window. `overlap` is in tokens."""

    mode: str = "truncate"
    overlap: int = 32

    def __post_init__(self) -> None:
        from nestvec.recipe.fields import check_part

        check_part("documents", self)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "overlap": self.overlap}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LongDocuments:
        return cls(mode=str(data.get("mode", "truncate")), overlap=int(data.get("overlap", 32)))


@dataclass(frozen=True)
class DocPlan:
    """Token count of a document and the character spans that will be embedded."""

    tokens: int
    truncated: bool
    spans: list[tuple[int, int]]


def plan(encoder: Encoder, texts: Sequence[str], policy: LongDocuments) -> list[DocPlan]:
    counts = encoder.token_counts(texts)
    plans = []
    for text, count in zip(texts, counts, strict=True):
        too_long = count > encoder.max_tokens
        if policy.mode == "split" and too_long:
            plans.append(DocPlan(count, False, _windows(encoder, text, policy.overlap)))
        else:
            plans.append(DocPlan(count, too_long, [(0, len(text))]))
    return plans


def _windows(encoder: Encoder, text: str, overlap: int) -> list[tuple[int, int]]:
    offsets = encoder.token_offsets(text)
    window = encoder.max_tokens - encoder.special_tokens
    if overlap >= window:
        raise InputError(f"overlap ({overlap} tokens) must be smaller than the model's window ({window} tokens).")
    stride = window - overlap
    spans = []
    for start in range(0, len(offsets), stride):
        end = min(start + window, len(offsets))
        spans.append((offsets[start][0], offsets[end - 1][1]))
        if end == len(offsets):
            break
    return spans
