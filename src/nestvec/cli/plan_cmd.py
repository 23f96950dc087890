"""`nestvec plan` and `nestvec compact`: measure index settings, apply one, reclaim space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.common import JsonOpt, emit, run_job

ListOpt = Annotated[str | None, typer.Option(help="Comma-separated list.")]


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def plan(
    source: Annotated[
        Path, typer.Argument(help="A collection folder, or a BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")
    ],
    queries: Annotated[
        Path | None, typer.Option("--queries", help="Queries for a collection: .jsonl (id, text) or .txt.")
    ] = None,
    qrels: Annotated[
        Path | None, typer.Option("--qrels", help="Judgments for those queries (TSV: query-id, doc-id, grade).")
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model for a BEIR folder.")] = "minilm",
    dims: Annotated[
        str | None, typer.Option("--dims", help="Widths to try, e.g. 384,192,96 [default: d, d/2, d/4].")
    ] = None,
    codes: Annotated[
        str, typer.Option("--codes", help="Code precisions to try (rabitq with flat and ivf only).")
    ] = "float32,int8,binary,rabitq",
    strategy: Annotated[str, typer.Option("--strategy", help="Strategies to try: flat, hnsw, ivf.")] = "flat,hnsw",
    rescore: Annotated[str, typer.Option("--rescore", help="Rescoring factors to try below float32 (0 = none).")] = "4",
    k: Annotated[int, typer.Option("-k", min=1, help="Quality at k (recall@k without qrels).")] = 10,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the trade-off plot (PNG) here.")] = None,
    apply: Annotated[
        str | None,
        typer.Option(
            "--apply",
            help="Rebuild the collection with row N of the table, or a row's setting (index=hnsw:codes=int8:dims=128).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure every dims × codes × strategy: quality, bytes, RAM, q/s, latency, build time."""
    from nestvec.errors import InputError
    from nestvec.eval import candidates, from_beir, from_collection, measure_all
    from nestvec.eval.report import plot_measured, print_measured

    def job() -> Any:
        is_collection = (source / "store.sqlite3").exists()
        if is_collection:
            if queries is None:
                raise InputError("Planning over a collection needs --queries FILE (and --qrels FILE for nDCG).")
            workload = from_collection(source, queries, qrels=qrels)
        elif (source / "corpus.jsonl").exists():
            workload = from_beir(source, model=model)
        else:
            raise InputError(f"{source} is neither a collection (store.sqlite3) nor a BEIR folder (corpus.jsonl).")
        widths = [_int(d, "--dims") for d in _split(dims) or []] or None
        options = candidates(
            workload.dim,
            dims=widths,
            codes=_split(codes) or [],
            strategies=_split(strategy) or [],
            rescores=[_int(r, "--rescore") for r in _split(rescore) or ["4"]],
        )
        rows = measure_all(workload, options, k=k)
        if plot is not None:
            plot_measured(rows, plot, f"nestvec plan: {Path(workload.name).name}")
        applied = _apply(source, apply, rows) if apply is not None else None
        if apply is not None and not is_collection:
            raise InputError("--apply rebuilds a collection; the source is a BEIR folder.")
        return workload, rows, applied

    workload, rows, applied = run_job(as_json, job)
    if as_json:
        emit(True, {"source": str(source), "rows": [r.to_dict() for r in rows], "applied": applied}, "")
        return
    print_measured(
        rows, f"{Path(workload.name).name}: {len(workload.vectors)} vectors, {len(workload.queries)} queries"
    )
    if plot is not None:
        typer.echo(f"plot: {plot}")
    if applied:
        typer.echo(f"applied: {applied}")


def _int(value: str, option: str) -> int:
    from nestvec.errors import InputError

    if not value.isdigit():
        raise InputError(f"{option} takes non-negative integers, got {value!r}.")
    return int(value)


def _apply(source: Path, choice: str, rows: list[Any]) -> str:
    from nestvec.errors import InputError
    from nestvec.store.rebuild import rebuild_collection

    if choice.isdigit():
        if not 1 <= int(choice) <= len(rows):
            raise InputError(f"--apply {choice}: the table has rows 1 to {len(rows)}.")
        choice = rows[int(choice) - 1].setting
    rebuild_collection(source, choice)
    return choice


def compact(collection: Annotated[Path, typer.Argument(help="Collection folder.")], as_json: JsonOpt = False) -> None:
    """Rebuild the index without deleted rows and reclaim the store's free space."""
    from dataclasses import asdict

    from nestvec.store import Collection

    def job() -> Any:
        with Collection.open(collection) as coll:
            return coll.compact()

    report = run_job(as_json, job)
    emit(
        as_json,
        asdict(report),
        f"{collection}: index rows {report.rows_before} -> {report.rows_after} in {report.seconds:.1f}s",
    )
