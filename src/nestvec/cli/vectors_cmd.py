"""`nestvec vectors`: convert word-vector files and query them; thin over encoders.wordvectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.common import JsonOpt, emit, run_job

vectors_app = typer.Typer(
    help="Word-vector files (word2vec, GloVe, fastText .vec).", no_args_is_help=True, rich_markup_mode=None
)


@vectors_app.command("convert")
def convert(
    source: Annotated[Path, typer.Argument(help="A word2vec (text or binary), GloVe or fastText .vec file.")],
    target: Annotated[Path, typer.Argument(help="Folder to create (memory-mapped, opens instantly).")],
    fmt: Annotated[str, typer.Option("--format", help="auto, text, binary or glove.")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Convert a word-vector file into nestvec's compact folder."""
    import time

    from nestvec.encoders.wordvectors import WordVectors
    from nestvec.encoders.wordvectors import convert as run

    def job() -> Any:
        start = time.perf_counter()
        folder = run(source, target, fmt=fmt)
        return WordVectors(folder), time.perf_counter() - start

    vectors, seconds = run_job(as_json, job)
    data = {"folder": str(target), "words": vectors.count, "dim": vectors.dim, "seconds": seconds}
    emit(as_json, data, f"{target}: {vectors.count} words × {vectors.dim} dims in {seconds:.1f}s")


@vectors_app.command("similar")
def similar(
    folder: Annotated[Path, typer.Argument(help="A converted word-vector folder.")],
    word: Annotated[str, typer.Argument(help="A word (unknown words are built from character n-grams).")],
    k: Annotated[int, typer.Option("-k", min=1, help="How many neighbours.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The words closest to WORD by cosine."""
    from nestvec.encoders.wordvectors import WordVectors

    found = run_job(as_json, lambda: WordVectors(folder).most_similar(word, k))
    emit(
        as_json,
        {"word": word, "similar": [{"word": w, "cosine": c} for w, c in found]},
        "\n".join(f"{c:.3f}  {w}" for w, c in found),
    )
