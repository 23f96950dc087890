"""Helpers every command shares: JSON output and turning library errors into exit code 1."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from nestvec.errors import NestvecError

T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON object instead of text.")]


def emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2) if as_json else text)


def run_job(as_json: bool, job: Callable[[], T]) -> T:
    """Turn library errors into a one-line message and exit code 1, never a traceback."""
    try:
        return job()
    except NestvecError as exc:
        if as_json:
            typer.echo(json.dumps({"error": str(exc), "type": type(exc).__name__}), err=True)
        else:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        # every batch is a transaction: what was stored before Ctrl-C stays, the rest was never begun
        message = (
            "interrupted; what was stored before stays and nothing is half-written "
            "(`nestvec add --skip-existing` resumes an add)."
        )
        if as_json:
            typer.echo(json.dumps({"error": message, "type": "KeyboardInterrupt"}), err=True)
        else:
            typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(130) from None
