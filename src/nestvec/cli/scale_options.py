"""Ray jobs of the CLI (`embed --ray`, `index build --ray`): their options and the steps both share."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Run on Ray: 'local' (a runtime on this machine's CPUs), 'auto' (the running cluster) or HOST:PORT. "
        "The output is then a folder of Parquet shards, resumable.",
    ),
]
ActorsOpt = Annotated[int | None, typer.Option("--actors", min=1, help="Ray actors (default: CPUs / --threads).")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="CPUs and model threads per Ray actor.")]
GpusOpt = Annotated[float, typer.Option("--gpus", min=0.0, help="GPUs per Ray actor (0: CPU actors).")]
ShardRowsOpt = Annotated[int, typer.Option("--shard-rows", min=1, help="Records per Parquet shard.")]
StoreAsOpt = Annotated[
    str, typer.Option("--store-as", help="Shard vectors as float32, float16, int8 (127·x) or binary (packed bits).")
]


@contextlib.contextmanager
def stdout_on_stderr() -> Iterator[None]:
    """Ray prints cluster events ("(raylet) A worker died…") on the driver's stdout, where the
    command's report (--json) alone belongs: while the job runs, stdout is stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def scale_options(
    ray: str, actors: int | None, threads: int, gpus: float, rows: int, store_as: str, progress: bool | None
) -> Any:
    from nestvec.scale import ScaleOptions

    return ScaleOptions(
        ray=ray, actors=actors, threads=threads, gpus=gpus, rows=rows, store_as=store_as,
        progress=progress,
    )  # fmt: skip


def embed_to_shards(input: Path, output: Path, recipe: Any, read: Any, options: Any) -> Any:
    from nestvec.scale import embed_shards

    with stdout_on_stderr():
        return embed_shards([input], output, recipe=recipe, read=read, options=options)


def ray_build(input: Path, collection: Path, recipe: Any, read: Any, options: Any) -> Any:
    import shutil

    from nestvec.io.ingest import new_collection_path
    from nestvec.scale.ingest import build_from_shards

    new_collection_path(collection)  # refused before anything is embedded
    folder = collection.with_name(collection.name + ".shards")
    embed_to_shards(input, folder, recipe, read, options)
    report = build_from_shards(folder, collection, recipe=recipe)
    shutil.rmtree(folder)
    return report


def shards_text(report: Any) -> str:
    resumed = f" ({report.skipped} done before, skipped)" if report.skipped else ""
    return (
        f"wrote {report.rows} records ({report.chunks} vectors × {report.dim}) in {report.shards} shards to "
        f"{report.folder}{resumed} on {report.actors} Ray actors in {report.seconds:.1f}s"
    )
