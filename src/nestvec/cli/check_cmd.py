"""`nestvec check` and `nestvec repair`: thin over nestvec.store.check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nestvec.cli.common import JsonOpt, emit, run_job

CollectionArg = Annotated[Path, typer.Argument(help="Collection folder.")]


def check(
    collection: CollectionArg,
    no_model: Annotated[bool, typer.Option("--no-model", help="Do not load the model to verify its files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify the store, keyword index, vector index (every row against its stored vector), model and files.

    Exits 1 when anything is wrong; `nestvec repair` rebuilds what is derived.
    """
    from nestvec.store.check import check_collection

    report = run_job(as_json, lambda: check_collection(collection, model=not no_model))
    lines = [f"{'ok  ' if f.ok else 'FAIL'} {f.part:10} {f.detail}" for f in report.findings]
    emit(as_json, report.to_dict(), "\n".join([*lines, "sound" if report.ok else "problems found: run nestvec repair"]))
    if not report.ok:
        raise typer.Exit(1)


def repair(collection: CollectionArg, as_json: JsonOpt = False) -> None:
    """Rebuild derived data (vector and keyword indexes) from the store and remove leftover files."""
    from nestvec.store.check import repair_collection

    report = run_job(as_json, lambda: repair_collection(collection))
    text = "\n".join([*report.actions, "sound now" if report.after.ok else "still wrong: see nestvec check"])
    emit(as_json, report.to_dict(), text)
    if not report.after.ok:
        raise typer.Exit(1)
