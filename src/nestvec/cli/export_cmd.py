"""`nestvec export`: thin over nestvec.export.export_collection."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.common import JsonOpt, emit, run_job


def export(
    collection: Annotated[Path, typer.Argument(help="The collection folder.")],
    target: Annotated[
        str,
        typer.Argument(
            help="postgresql://USER@HOST/DB[#table], qdrant://PATH[#name], milvus://FILE.db[#name], "
            "lance://PATH[#table] or parquet://FILE."
        ),
    ],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a target that holds other vectors (another model or dims).")
    ] = False,
    index: Annotated[
        str | None,
        typer.Option("--index", help="lance: ivf_pq; milvus: ivf_flat or hnsw; postgresql: hnsw or ivfflat."),
    ] = None,
    quantization: Annotated[
        str | None,
        typer.Option("--quantization", help="qdrant: scalar or binary; postgresql: halfvec or bit (re-ranked)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a collection's vectors to a vector database; later exports send only what changed."""
    from dataclasses import asdict

    from nestvec.export import export_collection
    from nestvec.store.collection import Collection

    def job() -> Any:
        options = {k: v for k, v in (("index", index), ("quantization", quantization)) if v is not None}
        with Collection.open(collection) as opened:
            return asdict(export_collection(opened, target, overwrite=overwrite, options=options))

    report = run_job(as_json, job)
    emit(
        as_json,
        report,
        f"exported {collection} to {report['target']} ({report['mode']}): {report['upserted']} upserted, "
        f"{report['deleted']} deleted, {report['rows']} rows there, in {report['seconds']:.1f}s",
    )
