"""Bulk ingest: a finished shard folder's vectors into a collection, without running the model.

The shards' recipe must match the collection's: the same model identity (weights, layers,
compute) and long-document policy, so the stored vectors are the ones the collection's own
model would make; each shard's checksum is verified before it is read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from nestvec.errors import InputError, RecipeMismatchError
from nestvec.io.ingest import building, new_collection_path
from nestvec.recipe import Recipe
from nestvec.scale.shards import Manifest, float_vectors, read_meta, sha256
from nestvec.store.chunking import DocPlan
from nestvec.store.collection import Collection
from nestvec.store.types import AddReport, Document


def ingest_shards(collection: Collection, folder: str | Path, *, upsert: bool = False) -> AddReport:
    """Store every shard of `folder` in `collection` (shard by shard, each a transaction)."""
    manifest = Manifest.read(Path(folder).expanduser().resolve())
    if not manifest.complete:
        raise InputError(
            f"{manifest.folder} is unfinished: {len(manifest.finished)} of {manifest.header['shards']} shards "
            "are done. Run the same embed job again to finish it, then ingest."
        )
    check_recipe(collection, Recipe.from_dict(manifest.header["recipe"]), manifest.folder)
    if not upsert:
        _refuse_existing(collection, manifest)
    report = AddReport()
    start = time.perf_counter()
    for index in sorted(manifest.finished):
        entry = manifest.finished[index]
        path = manifest.folder / str(entry["name"])
        docs, plans, vectors = read_shard(path, expected=str(entry["sha256"]))
        report.merge(collection.add_embedded(docs, plans, vectors, replace=upsert))
    report.seconds = time.perf_counter() - start
    return report


def check_recipe(collection: Collection, shards: Recipe, folder: Path) -> None:
    if shards.identity is None:
        raise InputError(f"{folder}'s manifest records no model identity; it was not written by nestvec.")
    try:
        collection.recipe.check_encoder(shards.identity, str(collection.path))
    except RecipeMismatchError as exc:
        raise RecipeMismatchError(
            f"The shards in {folder} were made by another model than the collection's: {exc}"
        ) from None
    if shards.long_documents != collection.recipe.long_documents:
        raise RecipeMismatchError(
            f"The shards in {folder} cut long documents as {shards.long_documents.to_dict()}, the collection at "
            f"{collection.path} as {collection.recipe.long_documents.to_dict()}; embed them again with its policy."
        )


def read_shard(path: Path, *, expected: str) -> tuple[list[Document], list[DocPlan], Any]:
    """A shard's documents, their chunk plans and the chunk vectors (float32)."""
    import pyarrow.parquet as pq

    if sha256(path) != expected:
        raise InputError(f"{path} changed since it was written (sha256 differs from the manifest); embed it again.")
    meta = read_meta(path)
    table = pq.read_table(path)
    vectors = float_vectors(table, str(meta["store_as"]))
    rows = table.drop(["embedding"]).to_pylist()
    docs: list[Document] = []
    plans: list[DocPlan] = []
    for row in rows:
        if row["chunk"] == 0:
            docs.append(Document(row["id"], row["text"], json.loads(row["metadata"])))
            plans.append(DocPlan(int(row["tokens"]), bool(row["truncated"]), []))
        plans[-1].spans.append((int(row["start"]), int(row["end"])))
    return docs, plans, vectors


def _refuse_existing(collection: Collection, manifest: Manifest) -> None:
    import pyarrow.parquet as pq

    from nestvec.errors import DuplicateIdError

    for entry in manifest.finished.values():
        ids = pq.read_table(manifest.folder / str(entry["name"]), columns=["id", "chunk"]).to_pydict()
        found = collection.existing([i for i, c in zip(ids["id"], ids["chunk"], strict=True) if c == 0])
        if found:
            raise DuplicateIdError(
                f"{len(found)}+ id(s) of {manifest.folder} are already stored, e.g. {sorted(found)[0]!r}. "
                "Use upsert (--upsert) to replace them; nothing was written."
            )


def build_from_shards(folder: str | Path, path: str | Path, *, recipe: Recipe) -> AddReport:
    """A new collection at `path` from a finished shard folder; it appears whole or not at all."""
    with building(new_collection_path(path)) as tmp, Collection.create(tmp, recipe=recipe) as collection:
        return ingest_shards(collection, folder)
