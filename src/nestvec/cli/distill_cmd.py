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
    refine_on: Annotated[
        Path | None,
        typer.Option("--refine-on", help="Unlabeled texts (.txt/.jsonl/.csv/.parquet) to refine the table on."),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Refinement passes over the texts.")] = 1,
    vocabulary: Annotated[
        Path | None,
        typer.Option("--vocabulary", help="Texts whose frequent whole words become tokens of their own."),
    ] = None,
    vocabulary_size: Annotated[int, typer.Option("--vocabulary-size", min=1, help="Words to add at most.")] = 10_000,
    as_json: JsonOpt = False,
) -> None:
    """Distil a static model (a vector per token, no torch at inference) from a transformer."""
    import shutil
    from dataclasses import asdict

    from nestvec.train import distill as run
    from nestvec.train import refine

    def job() -> Any:
        texts = _texts(refine_on) if refine_on is not None else None  # read first: a bad file fails fast
        words = _words(vocabulary, teacher, vocabulary_size) if vocabulary is not None else []
        options: dict[str, Any] = {"dims": dims, "sif_coefficient": sif, "storage": storage, "vocabulary": words}
        if texts is None:
            return asdict(run(teacher, output, **options))
        plain = output.with_name(f".{output.name}.distilled")
        shutil.rmtree(plain, ignore_errors=True)
        try:
            first = run(teacher, plain, **options)
            refined = refine(plain, texts, output, teacher=teacher, epochs=epochs)
        finally:
            shutil.rmtree(plain, ignore_errors=True)
        return asdict(first) | {"path": str(output), "refined_on": refined.texts, "refine_loss": refined.final_loss}

    report = run_job(as_json, job)
    refined = f", refined on {report['refined_on']} texts" if "refined_on" in report else ""
    emit(
        as_json,
        report,
        f"distilled {report['teacher']} into {report['path']}: {report['vocabulary']} tokens × {report['dims']} "
        f"dims ({report['explained_variance']:.0%} of variance kept){refined}",
    )


def _texts(path: Path) -> list[str]:
    from nestvec.io.readers import RecordReader

    return [r.text for r in RecordReader(path, id_field=None, skip_empty=True)]


def _words(path: Path, teacher: str, size: int) -> list[str]:
    from tokenizers import Tokenizer

    from nestvec.encoders import resolve_model
    from nestvec.encoders.transformer.folder import read_st_folder
    from nestvec.train import corpus_words

    folder = read_st_folder(resolve_model(teacher)[1])
    tokenizer = Tokenizer.from_file(str(folder.transformer_dir / "tokenizer.json"))
    return corpus_words(_texts(path), tokenizer, size=size)


def train_hash(
    output: Annotated[Path, typer.Argument(help="Folder for the hash model (must not exist).")],
    texts: Annotated[Path, typer.Option("--texts", help="Unlabeled texts (.txt/.jsonl/.csv/.parquet) to learn on.")],
    teacher: Annotated[str, typer.Option("--teacher", "-t", help="Teacher: model name or folder.")] = "minilm",
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the texts.")] = 3,
    typo_rate: Annotated[
        float, typer.Option("--typo-rate", min=0.0, max=1.0, help="Share of words given a typo in a second copy.")
    ] = 0.0,
    lexicon: Annotated[int, typer.Option("--lexicon", min=0, help="Known words kept to mend typos (0: none).")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the table and the data order.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Train hash embeddings (no vocabulary, no torch at inference) on a teacher's vectors of TEXTS."""
    from dataclasses import asdict

    from nestvec.encoders import load_encoder
    from nestvec.train.hashed import train_hashed

    def job() -> Any:
        corpus = _texts(texts)  # read first: a bad file fails before the teacher loads
        targets = load_encoder(teacher).encode(corpus, batch_size=64)
        name = f"hash embeddings of {teacher}"
        made = train_hashed(
            corpus, targets, output, epochs=epochs, typo_rate=typo_rate, lexicon=lexicon, seed=seed, name=name
        )
        return asdict(made)

    report = run_job(as_json, job)
    emit(
        as_json,
        report,
        f"trained {report['path']} on {report['texts']} texts, {report['epochs']} epochs "
        f"(loss {report['final_loss']:.4f}) in {report['seconds']:.1f}s",
    )
