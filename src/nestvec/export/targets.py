"""Export targets: a closed registry of the databases nestvec writes to, by URL scheme.

Each target keeps, beside the vectors, a small state record: the vector signature of the
collection it holds, its dims and metric, and the collection version it is up to date with (so
the next export sends only what changed). It lives in the target itself (Qdrant collection
metadata, a Lance field's metadata, Parquet schema metadata), so a target that is dropped or
replaced takes its state with it and the next export starts over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nestvec.errors import InputError
from nestvec.export.feed import Rows
from nestvec.files import check_creatable
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
    def foreign(cls, dim: int = 0) -> TargetState:
        """What a table or collection nestvec did not write reads as: never taken for ours."""
        return cls("", dim, "unknown", 0)

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


@dataclass(frozen=True)
class Scheme:
    """A registered target: the module and class that write it, and the options it takes."""

    module: str
    cls: str
    options: tuple[str, ...] = ()

    def open(self, where: str, options: dict[str, Any]) -> Target:
        import importlib

        factory = getattr(importlib.import_module(f"nestvec.export.{self.module}"), self.cls)
        return factory(where, **options)  # type: ignore[no-any-return]


SCHEMES: dict[str, Scheme] = {
    "lance": Scheme("lance", "LanceTarget", ("index",)),
    "milvus": Scheme("milvus", "MilvusTarget", ("index",)),
    "postgresql": Scheme("postgres", "PostgresTarget", ("index", "quantization")),
    "qdrant": Scheme("qdrant", "QdrantTarget", ("quantization",)),
    "parquet": Scheme("parquet", "ParquetTarget"),
}
OPTIONS = ("index", "quantization")

# Target options riding in the URL; anything else after "?" is the database's own (postgresql://...?host=).
_OPTION = re.compile(r"[?&](index|quantization)=([^&#]*)")


def open_target(url: str, **options: Any) -> Target:
    """The target a URL names: postgresql://USER@HOST/DB[?...][#table], lance://PATH[#table],
    qdrant://PATH or qdrant://http://HOST:PORT[#name], milvus://FILE.db or milvus://http://HOST:PORT[#name],
    parquet://FILE. Options may also ride in the URL: `lance://db#t?index=ivf_pq`."""
    for key, value in _OPTION.findall(url):
        options.setdefault(key, value)
    had_query = "?" in url
    url = _OPTION.sub("", url)
    if had_query and "?" not in url and "&" in url:  # the first option went, the database's own stay
        url = url.replace("&", "?", 1)
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise InputError(
            f"An export target is a URL SCHEME://WHERE, got {url!r}; for example lance://./vectors, "
            "qdrant://./qdrant-data#papers, parquet://./papers.parquet."
        )
    if scheme not in SCHEMES:
        raise InputError(unknown_name_message("export target scheme", scheme, list(SCHEMES)))
    if scheme != "postgresql" and "?" in rest:
        raise InputError(f"Target options are {' or '.join(o + '=...' for o in OPTIONS)}; got {url!r}.")
    for key in options:
        if key not in SCHEMES[scheme].options:
            takers = ", ".join(f"{name}://" for name, s in SCHEMES.items() if key in s.options)
            raise InputError(f"--{key} applies to {takers} targets (?{key}= in the URL), not {scheme}://.")
    if scheme != "postgresql":
        _check_local(scheme, rest.partition("#")[0])
    return SCHEMES[scheme].open(rest, options)


def _check_local(scheme: str, where: str) -> None:
    """A file or folder target must be makeable before any row is read; a HOST:PORT where a path
    belongs is a server meant, not a folder named so."""
    if where.startswith(("http://", "https://")):
        return
    path = Path(where).expanduser()
    if path.exists():
        return
    if scheme in ("qdrant", "milvus") and re.fullmatch(r"[\w.-]+:\d+", where):
        raise InputError(
            f"{scheme}://{where} names a local file or folder, which does not exist; for a {scheme} server "
            f"write {scheme}://http://{where}."
        )
    check_creatable(path)
