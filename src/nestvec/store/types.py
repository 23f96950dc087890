"""Typed records that cross the collection API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """Where in its document a stored window starts and ends (character offsets)."""

    number: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    chunk: Chunk | None = None

    def to_dict(self) -> dict[str, Any]:
        # Field by field rather than dataclasses.asdict, whose deep copy of the metadata cost more
        # than a search over a small collection (servers call this for every hit they answer).
        chunk = self.chunk
        part = (
            None
            if chunk is None
            else {"number": chunk.number, "start": chunk.start, "end": chunk.end, "text": chunk.text}
        )
        return {"id": self.id, "score": self.score, "text": self.text, "metadata": self.metadata, "chunk": part}


@dataclass
class AddReport:
    """What one add/upsert call did. `truncated` counts documents cut at the model's window."""

    added: int = 0
    updated: int = 0
    skipped: int = 0
    truncated: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def merge(self, other: AddReport) -> None:
        self.added += other.added
        self.updated += other.updated
        self.skipped += other.skipped
        self.truncated += other.truncated
        self.chunks += other.chunks
        self.seconds += other.seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
