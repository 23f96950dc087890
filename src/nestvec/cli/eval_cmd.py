"""`nestvec eval <task>` and `nestvec inspect`: thin commands over nestvec.eval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.common import JsonOpt, emit, run_job
from nestvec.errors import InputError

eval_app = typer.Typer(
    help="Measure models and settings on standard tasks.", no_args_is_help=True, rich_markup_mode=None
)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model name or folder (ignored when --compare is given).")]
Compare = Annotated[
    list[str] | None, typer.Option("--compare", help="Settings to compare, e.g. minilm,minilm:dims=128 (repeatable).")
]
Columns = Annotated[
    str | None, typer.Option("--columns", help="Columns as indexes (0,1,2) or header names (s1,s2,score).")
]
Header = Annotated[
    bool | None, typer.Option("--header/--no-header", help="Whether the first row is a header. [default: detect]")
]
Out = Annotated[Path | None, typer.Option("--out", help="Write a Markdown report here.")]
Plot = Annotated[
    Path | None, typer.Option("--plot", help="Write a PNG of quality against bytes/vector and throughput.")
]
Batch = Annotated[int, typer.Option("--batch-size", min=1)]


def _columns(spec: str | None, count: int) -> dict[str, Any]:
    if spec is None:
        return {}
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != count:
        raise InputError(f"--columns needs {count} comma-separated columns, got {spec!r}.")
    return {"columns": tuple(int(p) if p.isdigit() else p for p in parts)}


def _settings(model: str, compare: list[str] | None) -> list[Any]:
    from nestvec.eval import Setting
    from nestvec.recipe.recipe import split_unquoted

    specs = [s.strip() for group in (compare or [model]) for s in split_unquoted(group, ",") if s.strip()]
    return [Setting.parse(spec) for spec in specs]


def _evaluate(
    task: str,
    settings: Callable[[], list[Any]],
    as_json: bool,
    out: Path | None,
    plot: Path | None,
    call: Callable[[Any], Any],
) -> None:
    from nestvec.eval import report

    def job() -> list[Any]:  # the settings are read inside, so a malformed one is an error line, not a traceback
        return [call(setting) for setting in settings()]

    results = run_job(as_json, job)
    if plot is not None:
        report.plot_tradeoffs(results, plot)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report.markdown(results, plot=plot), encoding="utf-8")
    if as_json:
        emit(True, {"task": task, "results": [r.to_dict() for r in results], "plot": str(plot) if plot else None}, "")
    else:
        report.print_table(results)


@eval_app.command("sts")
def sts(
    data: Annotated[Path, typer.Argument(help="CSV/TSV/JSONL of text1, text2, score (or a header naming them).")],
    model: ModelOpt = "minilm",
    compare: Compare = None,
    columns: Columns = None,
    header: Header = None,
    score_range: Annotated[str, typer.Option("--score-range", help="Valid score range LOW,HIGH.")] = "0,5",
    batch_size: Batch = 64,
    out: Out = None,
    plot: Plot = None,
    as_json: JsonOpt = False,
) -> None:
    """Semantic textual similarity: Spearman/Pearson of cosine similarity against gold scores."""
    from nestvec.eval import evaluate_sts

    def call(setting: Any) -> Any:
        low, _, high = score_range.partition(",")
        try:
            bounds = (float(low), float(high))
        except ValueError as exc:
            raise InputError(f"--score-range must be LOW,HIGH, got {score_range!r}.") from exc
        return evaluate_sts(
            data, setting, header=header, score_range=bounds, batch_size=batch_size, **_columns(columns, 3)
        )

    _evaluate("sts", lambda: _settings(model, compare), as_json, out, plot, call)


@eval_app.command("pairs")
def pairs(
    data: Annotated[Path, typer.Argument(help="CSV/TSV/JSONL of text1, text2, 0/1 label (or a header naming them).")],
    model: ModelOpt = "minilm",
    compare: Compare = None,
    columns: Columns = None,
    header: Header = None,
    batch_size: Batch = 64,
    out: Out = None,
    plot: Plot = None,
    as_json: JsonOpt = False,
) -> None:
    """Pair classification: average precision and best F1/accuracy of cosine similarity."""
    from nestvec.eval import evaluate_pairs

    def call(setting: Any) -> Any:
        return evaluate_pairs(data, setting, header=header, batch_size=batch_size, **_columns(columns, 3))

    _evaluate("pairs", lambda: _settings(model, compare), as_json, out, plot, call)


@eval_app.command("classification")
def classification(
    data: Annotated[Path, typer.Argument(help="CSV/TSV/JSONL of text, label (training data).")],
    model: ModelOpt = "minilm",
    test: Annotated[
        Path | None, typer.Option("--test", help="Held-out CSV/TSV; without it, 5-fold cross-validation.")
    ] = None,
    compare: Compare = None,
    columns: Columns = None,
    header: Header = None,
    batch_size: Batch = 64,
    out: Out = None,
    plot: Plot = None,
    as_json: JsonOpt = False,
) -> None:
    """Logistic regression on embeddings: accuracy and macro-F1."""
    from nestvec.eval import evaluate_classification

    def call(setting: Any) -> Any:
        return evaluate_classification(
            data, setting, test=test, header=header, batch_size=batch_size, **_columns(columns, 2)
        )

    _evaluate("classification", lambda: _settings(model, compare), as_json, out, plot, call)


@eval_app.command("clustering")
def clustering(
    data: Annotated[Path, typer.Argument(help="CSV/TSV/JSONL of text, label.")],
    model: ModelOpt = "minilm",
    compare: Compare = None,
    columns: Columns = None,
    header: Header = None,
    batch_size: Batch = 64,
    out: Out = None,
    plot: Plot = None,
    as_json: JsonOpt = False,
) -> None:
    """k-means clustering of embeddings: V-measure against the labels."""
    from nestvec.eval import evaluate_clustering

    def call(setting: Any) -> Any:
        return evaluate_clustering(data, setting, header=header, batch_size=batch_size, **_columns(columns, 2))

    _evaluate("clustering", lambda: _settings(model, compare), as_json, out, plot, call)


@eval_app.command("retrieval")
def retrieval(
    data: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    model: ModelOpt = "minilm",
    compare: Compare = None,
    split: Annotated[str, typer.Option("--split", help="Qrels file to use.")] = "test",
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="dense, sparse (BM25) or hybrid; a comma list runs each on one collection."),
    ] = None,
    fusion: Annotated[str | None, typer.Option("--fusion", help="Hybrid fusion: weighted or rrf.")] = None,
    dense_weight: Annotated[
        float | None, typer.Option("--dense-weight", min=0.0, max=1.0, help="Hybrid: weight of the dense side.")
    ] = None,
    through: Annotated[
        str | None,
        typer.Option("--through", help="Search an export target instead, e.g. qdrant://./q?quantization=binary."),
    ] = None,
    batch_size: Batch = 64,
    out: Out = None,
    plot: Plot = None,
    as_json: JsonOpt = False,
) -> None:
    """Retrieval through a real collection: nDCG@10, Recall@10/100, MRR@10, MAP@100."""
    from nestvec.eval import evaluate_retrieval

    def call(setting: Any) -> Any:
        return evaluate_retrieval(data, setting, split=split, batch_size=batch_size, through=through)

    def expand() -> list[Any]:
        settings = _settings(model, compare)
        override = {k: v for k, v in (("fusion", fusion), ("dense_weight", dense_weight)) if v is not None}
        modes = [m.strip() for m in mode.split(",")] if mode else [None]
        return [s.with_values(**override, **({"mode": m} if m else {})) for s in settings for m in modes]

    _evaluate("retrieval", expand, as_json, out, plot, call)


def inspect(
    data: Annotated[Path, typer.Argument(help="Documents file (.jsonl/.csv/.tsv/.txt/.parquet).")],
    model: Annotated[str, typer.Option("--model", "-m")] = "minilm",
    text_field: Annotated[list[str] | None, typer.Option("--text-field")] = None,
    pairs: Annotated[
        Path | None, typer.Option("--pairs", help="STS CSV; pairs scoring ≥ --min-score measure alignment.")
    ] = None,
    min_score: Annotated[float, typer.Option("--min-score")] = 4.0,
    limit: Annotated[int, typer.Option("--limit", min=2, help="Embed at most this many documents.")] = 5000,
    as_json: JsonOpt = False,
) -> None:
    """Embedding-space diagnostics: anisotropy, effective rank, alignment, uniformity, norms."""
    from itertools import islice

    from nestvec.encoders import load_encoder
    from nestvec.eval import diagnose
    from nestvec.eval.readers import read_sts
    from nestvec.io.readers import RecordReader

    def job() -> Any:
        encoder = load_encoder(model)
        texts = [
            r.text for r in islice(RecordReader(data, id_field=None, text_fields=tuple(text_field or ["text"])), limit)
        ]
        positives = None
        if pairs is not None:
            gold = read_sts(pairs)
            chosen = [i for i, s in enumerate(gold.values) if s >= min_score]
            if not chosen:
                raise InputError(f"{pairs}: no pair scores ≥ {min_score}; lower --min-score.")
            positives = (
                encoder.encode([gold.texts1[i] for i in chosen]),
                encoder.encode([gold.texts2[i] for i in chosen]),
            )
        return diagnose(encoder.encode(texts), positives=positives)

    result = run_job(as_json, job)
    text = "\n".join(
        f"{k:15s} {v:.4f}" if isinstance(v, float) else f"{k:15s} {v}" for k, v in result.to_dict().items()
    )
    emit(as_json, result.to_dict(), text)


__all__ = ["eval_app", "inspect"]
