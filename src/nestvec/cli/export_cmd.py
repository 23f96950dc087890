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
        typer.Argument(help="lance://PATH[#table], qdrant://PATH[#name] or qdrant://http://HOST:PORT, parquet://FILE."),
    ],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a target that holds other vectors (another model or dims).")
    ] = False,
    index: Annotated[str | None, typer.Option("--index", help="LanceDB: build an ivf_pq index.")] = None,
    quantization: Annotated[
        str | None, typer.Option("--quantization", help="Qdrant: scalar or binary (searched with rescoring).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a collection's vectors to a vector database; later exports send only what changed."""
    from dataclasses import asdict

    from nestvec.errors import InputError
    from nestvec.export import export_collection
    from nestvec.store.collection import Collection

    def job() -> Any:
        options = {k: v for k, v in (("index", index), ("quantization", quantization)) if v is not None}
        scheme = target.partition("://")[0]
        wanted = {"index": "lance", "quantization": "qdrant"}
        for name in options:
            if wanted[name] != scheme:
                raise InputError(f"--{name} applies to {wanted[name]}:// targets, not {scheme}://.")
        with Collection.open(collection) as opened:
            return asdict(export_collection(opened, target, overwrite=overwrite, options=options))

    report = run_job(as_json, job)
    emit(
        as_json,
        report,
        f"exported {collection} to {report['target']} ({report['mode']}): {report['upserted']} upserted, "
        f"{report['deleted']} deleted, {report['rows']} rows there, in {report['seconds']:.1f}s",
    )
