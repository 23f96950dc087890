"""`nestvec distill`: thin over nestvec.train.distill."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.common import JsonOpt, emit, run_job


def distill(
    output: Annotated[Path, typer.Argument(help="Folder for the static model (must not exist).")],
    teacher: Annotated[str, typer.Option("--teacher", "-t", help="Teacher: model name or folder.")] = "minilm",
    dims: Annotated[int, typer.Option("--dims", min=1, help="Width of the static vectors (PCA).")] = 256,
    sif: Annotated[float, typer.Option("--sif", min=0.0, help="SIF coefficient a in a / (a + p).")] = 1e-4,
    storage: Annotated[str, typer.Option("--storage", help="Table storage: float32, float16 or int8.")] = "float32",
    as_json: JsonOpt = False,
) -> None:
    """Distil a static model (a vector per token, no torch at inference) from a transformer."""
    from dataclasses import asdict

    from nestvec.train import distill as run

    def job() -> Any:
        return run(teacher, output, dims=dims, sif_coefficient=sif, storage=storage)

    report = run_job(as_json, job)
    emit(
        as_json,
        asdict(report),
        f"distilled {report.teacher} into {report.path}: {report.vocabulary} tokens × {report.dims} dims "
        f"({report.explained_variance:.0%} of variance kept) in {report.seconds:.0f}s",
    )
