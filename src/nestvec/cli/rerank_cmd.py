"""`nestvec rerank`: order texts by a cross-encoder's relevance to a query."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.common import JsonOpt, emit, run_job

RerankOpt = Annotated[
    str | None, typer.Option("--rerank", help="Re-score the first --rerank-depth hits with this cross-encoder folder.")
]
DepthOpt = Annotated[int, typer.Option("--rerank-depth", min=1, help="Hits re-scored by --rerank.")]


def rerank(
    model: Annotated[str, typer.Argument(help="Cross-encoder: a sentence-transformers CrossEncoder folder or id.")],
    query: Annotated[str, typer.Argument(help="Query text.")],
    input: Annotated[Path, typer.Argument(help="Candidate texts: .txt (one per line), .jsonl, .csv, .tsv, .parquet.")],
    text_field: Annotated[list[str] | None, typer.Option("--text-field", help="Field(s) holding the text.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Show only the best K.")] = None,
    raw_scores: Annotated[bool, typer.Option("--raw-scores", help="Logits, not sigmoid scores.")] = False,
    backend: Annotated[str, typer.Option("--backend", help="auto, torch or onnx.")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Rank candidate texts by a cross-encoder's relevance to QUERY, best first."""
    from nestvec.io.readers import RecordReader
    from nestvec.rerank import load_reranker

    def job() -> Any:
        reranker = load_reranker(model, backend=backend)
        records = list(RecordReader(input, id_field=None, text_fields=tuple(text_field or ["text"])))
        ranked = reranker.rank(query, [r.text for r in records], top_k=top_k, raw=raw_scores)
        return [
            {"index": r.index, "id": records[r.index].id, "score": r.score, "text": records[r.index].text}
            for r in ranked
        ]

    ranked = run_job(as_json, job)
    lines = [f"{n}. [{r['score']:.3f}] {r['id']}  {r['text'].strip()[:100]}" for n, r in enumerate(ranked, 1)]
    emit(as_json, {"query": query, "ranked": ranked}, "\n".join(lines) or "(no texts)")
