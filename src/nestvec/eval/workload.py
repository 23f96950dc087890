"""What trade-off measurements (`nestvec plan`) run on: corpus vectors, query vectors and (maybe) judgments.

From a collection: the stored chunk vectors (already embedded) plus a queries file, with qrels
when given. From a BEIR folder: the corpus and queries embedded with a model, and its qrels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nestvec.encoders import Encoder, load_encoder
from nestvec.eval.readers import read_beir, read_qrels, read_queries


@dataclass(frozen=True)
class Workload:
    name: str
    vectors: np.ndarray  # (rows, dim) unit vectors, at the source's full width
    row_docs: list[str]  # document id of each row (several rows per document when split)
    queries: np.ndarray  # (queries, dim)
    query_ids: list[str]
    qrels: dict[str, dict[str, int]] | None  # None: quality is recall@10 against exact float search

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def from_beir(folder: str | Path, *, model: str | Encoder = "minilm", split: str = "test") -> Workload:
    beir = read_beir(folder, split=split)
    from nestvec.encoders.prompts import model_prompts, prompted

    encoder = load_encoder(model) if isinstance(model, (str, Path)) else model
    declared = model_prompts(encoder)  # the model's own prompts, as a collection would use them
    documents, queries = (prompted(encoder, declared.get(side)) for side in ("document", "query"))
    ids = list(beir.corpus)
    texts = [f"{title} {text}".strip() for title, text in beir.corpus.values()]
    judged = [q for q in beir.queries if q in beir.qrels]
    return Workload(
        name=str(folder),
        vectors=documents.encode(texts, batch_size=64),
        row_docs=ids,
        queries=queries.encode([beir.queries[q] for q in judged], batch_size=64, progress=False),
        query_ids=judged,
        qrels={q: beir.qrels[q] for q in judged},
    )


def from_collection(path: str | Path, queries: str | Path, *, qrels: str | Path | None = None) -> Workload:
    from nestvec.store.collection import Collection

    asked = read_queries(queries)
    with Collection.open(path) as collection:
        _, vectors, docs = collection.stored_vectors()
        query_vectors = collection.embed_queries(list(asked.values()))
    judgments = None
    if qrels is not None:
        names = {"queries_name": str(queries), "corpus_name": f"the collection at {path}"}
        judgments = read_qrels(Path(qrels), queries=set(asked), corpus=set(docs), **names)
    return Workload(str(path), vectors, docs, query_vectors, list(asked), judgments)
