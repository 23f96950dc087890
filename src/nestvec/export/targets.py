"""Export targets: a closed registry of the databases nestvec writes to, by URL scheme.

Each target keeps, beside the vectors, a small state record: the vector signature of the
collection it holds, its dims and metric, and the collection version it is up to date with (so
the next export sends only what changed). It lives in the target itself (Qdrant collection
metadata, a Lance field's metadata, Parquet schema metadata), so a target that is dropped or
replaced takes its state with it and the next export starts over.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from nestvec.errors import InputError
from nestvec.export.feed import Rows
from nestvec.registry import unknown_name_message


@dataclass(frozen=True)
class TargetState:
    signature: str
    dim: int
    metric: str  # "dot" (vectors as stored: unit length when the model normalizes) or "cosine"
    version: int  # the collection version the target holds
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": 1, "signature": self.signature, "dim": self.dim, "metric": self.metric,
                "version": self.version, **self.extra}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetState:
        known = {"format", "signature", "dim", "metric", "version"}
        return cls(str(data["signature"]), int(data["dim"]), str(data["metric"]), int(data["version"]),
                   {k: v for k, v in data.items() if k not in known})  # fmt: skip


class Target(Protocol):
    """One table, collection or file in a database, written by label."""

    url: str

    def state(self) -> TargetState | None:
        """The state record, or None when the target does not exist yet."""

    def create(self, state: TargetState) -> None:
        """Make the target empty (replacing any there), with this state."""

    def upsert(self, rows: Rows) -> None: ...

    def delete(self, labels: list[int]) -> None: ...

    def commit(self, state: TargetState) -> None:
        """Record the state once everything up to `state.version` is written."""

    def count(self) -> int: ...

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """(label, score) of the `k` best rows per query, through the target's own client."""

    def read_all(self) -> dict[int, np.ndarray]:
        """Every row's vector by label (for checks)."""

    def close(self) -> None: ...


def _lance(rest: str, options: dict[str, Any]) -> Target:
    from nestvec.export.lance import LanceTarget

    return LanceTarget(rest, **options)


def _qdrant(rest: str, options: dict[str, Any]) -> Target:
    from nestvec.export.qdrant import QdrantTarget

    return QdrantTarget(rest, **options)


def _parquet(rest: str, options: dict[str, Any]) -> Target:
    from nestvec.export.parquet import ParquetTarget

    return ParquetTarget(rest, **options)


def _postgres(rest: str, options: dict[str, Any]) -> Target:
    from nestvec.export.postgres import PostgresTarget

    return PostgresTarget(rest, **options)


def _milvus(rest: str, options: dict[str, Any]) -> Target:
    from nestvec.export.milvus import MilvusTarget

    return MilvusTarget(rest, **options)


SCHEMES: dict[str, Callable[[str, dict[str, Any]], Target]] = {
    "milvus": _milvus,
    "postgresql": _postgres,
    "lance": _lance,
    "qdrant": _qdrant,
    "parquet": _parquet,
}


# Target options riding in the URL; anything else after "?" is the database's own (postgresql://...?host=).
_OPTION = re.compile(r"[?&](index|quantization)=([^&#]*)")


def open_target(url: str, **options: Any) -> Target:
    """The target a URL names: postgresql://USER@HOST/DB[?...][#table], lance://PATH[#table],
    qdrant://PATH or qdrant://http://HOST:PORT[#name], milvus://FILE.db or milvus://http://HOST:PORT[#name],
    parquet://FILE. Options may also ride in the
    URL: `lance://db#t?index=ivf_pq`."""
    for key, value in _OPTION.findall(url):
        options.setdefault(key, value)
    had_query = "?" in url
    url = _OPTION.sub("", url)
    if had_query and "?" not in url and "&" in url:  # the first option went, the database's own stay
        url = url.replace("&", "?", 1)
    scheme, sep, rest = url.partition("://")
    if scheme != "postgresql" and "?" in rest:
        raise InputError(f"Target options are index=... (lance, postgresql) or quantization=... (qdrant, "
                         f"postgresql); got {url!r}.")  # fmt: skip
    if not sep or not rest:
        raise InputError(
            f"An export target is a URL SCHEME://WHERE, got {url!r}; for example lance://./vectors, "
            "qdrant://./qdrant-data#papers, parquet://./papers.parquet."
        )
    if scheme not in SCHEMES:
        raise InputError(unknown_name_message("export target scheme", scheme, list(SCHEMES)))
    return SCHEMES[scheme](rest, options)
