"""`export_collection`: send a collection's vectors to a database, then only what changed.

The first export (or one with `overwrite`) creates the target and sends every stored vector;
later ones replay the collection's change log from the version the target records: removed
chunks are deleted there, added ones upserted by label. Writes are idempotent, so an export cut
short sends again what it had not recorded; the state is recorded last.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nestvec.errors import InputError
from nestvec.export.feed import rows_of, vector_signature
from nestvec.export.targets import TargetState, open_target
from nestvec.store.collection import Collection


@dataclass(frozen=True)
class ExportReport:
    target: str
    mode: str  # "full" or "incremental"
    upserted: int
    deleted: int
    from_version: int
    version: int
    rows: int  # in the target afterwards
    seconds: float


def export_collection(
    collection: Collection, url: str, *, overwrite: bool = False, options: dict[str, Any] | None = None
) -> ExportReport:
    """Send `collection` to the target at `url` (see nestvec.export.targets.open_target); `options`
    go to the target (lance: index="ivf_pq"; qdrant: quantization="scalar"|"binary")."""
    start = time.perf_counter()
    target = open_target(url, **(options or {}))
    try:
        signature, dim = vector_signature(collection), collection.recipe.dim
        held = target.state()
        if held is not None and (held.signature != signature or held.dim != dim) and not overwrite:
            raise InputError(
                f"{url} holds {held.dim}-dim vectors from another model or recipe than {collection.path} "
                f"({dim} dims): exporting there would mix vectors that cannot be compared. Export to a new "
                "target, or pass --overwrite (overwrite=True) to replace what it holds."
            )
        since = held.version if held is not None and not overwrite else 0  # a foreign target was refused above
        now, floor, removed, added = collection.changes(since)
        if since and since < floor:  # removals since then were pruned from the log: send everything
            since = 0
            now, floor, removed, added = collection.changes(0)
        state = TargetState(signature, dim, "dot", now)
        if since == 0:
            target.create(TargetState(signature, dim, "dot", 0))
        deleted = [int(label) for label in removed] if since else []
        if deleted:
            target.delete(deleted)
        upserted = 0
        for rows in rows_of(collection, added):
            target.upsert(rows)
            upserted += len(rows)
        target.commit(state)
        return ExportReport(
            url, "incremental" if since else "full", upserted, len(deleted), since, now, target.count(),
            time.perf_counter() - start,
        )  # fmt: skip
    finally:
        target.close()
