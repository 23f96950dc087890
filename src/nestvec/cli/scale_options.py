"""The options of a Ray job (`embed --ray`, `index build --ray`), shared by both commands."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Annotated

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
