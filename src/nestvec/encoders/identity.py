"""What makes two encoders produce the same vectors; numpy-free, so the recipe can hold it cheaply."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelIdentity:
    """What makes two encoders produce the same vectors: recorded in every collection's recipe."""

    kind: str
    name: str
    weights_sha256: str
    dim: int
    max_tokens: int
    normalized: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "weights_sha256": self.weights_sha256,
            "dim": self.dim,
            "max_tokens": self.max_tokens,
            "normalized": self.normalized,
            # As JSON has it, so an identity read back from a recipe equals the live one (tuples
            # such as a hash encoder's features come back as lists).
            "details": json.loads(json.dumps(self.details)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelIdentity:
        details = dict(data.get("details", {}))
        if "precision" in details and data.get("kind") == "transformer":  # nestvec 0.1's name for compute
            details["compute"] = details.pop("precision")
        return cls(
            kind=str(data["kind"]),
            name=str(data["name"]),
            weights_sha256=str(data["weights_sha256"]),
            dim=int(data["dim"]),
            max_tokens=int(data["max_tokens"]),
            normalized=bool(data["normalized"]),
            details=details,
        )

    def differences(self, other: ModelIdentity) -> list[str]:
        """Fields that differ in a way that changes the vectors (the display name does not).

        `other` is the recorded identity; each changed model file is named. Identities recorded
        before nestvec 0.3 hold no file hashes, so only their other fields can be compared.
        """
        keys = ["kind", "weights_sha256", "dim", "max_tokens", "normalized"]
        mine, theirs = self.to_dict(), other.to_dict()
        found = [f"{k}: {mine[k]!r} != {theirs[k]!r}" for k in keys if mine[k] != theirs[k]]
        here, there = dict(mine["details"]), dict(theirs["details"])
        files_here, files_there = here.pop("files", None), there.pop("files", None)
        if here != there:
            found.append(f"details: {here!r} != {there!r}")
        if isinstance(files_here, dict) and isinstance(files_there, dict):
            found += file_differences(files_here, files_there)
        return found


def file_differences(now: dict[str, str], then: dict[str, str]) -> list[str]:
    """A line per model file whose sha256 in `now` differs from the recorded one in `then`."""
    names = sorted(set(now) | set(then))
    return [f"file {n} {_file_change(now.get(n), then.get(n))}" for n in names if now.get(n) != then.get(n)]


def _file_change(now: str | None, then: str | None) -> str:
    if now is None:
        return "is missing (the collection was built with it)"
    if then is None:
        return "is new (the collection was built without it)"
    return f"has changed (sha256 {now[:12]}…, built with {then[:12]}…)"
