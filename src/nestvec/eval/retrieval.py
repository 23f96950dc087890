"""BEIR retrieval through a real collection, so it measures what would be served.

The corpus is embedded once per (model, how it runs, vector steps) and process: settings that
differ in their index (strategy, codes, rescoring, dims) get a collection derived from the
stored vectors (store/rebuild.py), and settings that differ only in how they search (mode,
fusion) share one collection. `--compare` over four index settings embeds the corpus once.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from nestvec.errors import InputError
from nestvec.eval import metrics
from nestvec.eval.readers import BEIR, read_beir
from nestvec.eval.setting import DEFAULT, Setting
from nestvec.eval.tasks import TaskResult

_corpora: dict[tuple[Any, ...], tuple[Any, float]] = {}  # corpus key -> (embedded collection, texts/s)
_built: dict[tuple[Any, ...], Any] = {}  # (corpus key, recipe) -> collection searched


def evaluate_retrieval(
    folder: str | Path,
    setting: Setting = DEFAULT,
    *,
    split: str = "test",
    k: int = 100,
    batch_size: int = 64,
    through: str | None = None,
) -> TaskResult:
    """nDCG@10, Recall@10/100, MRR@10 and MAP@100 over the judged queries, top `k` per query.
    `through` (an export target URL) searches the vectors exported there with that database's
    client instead of nestvec's index, and adds its median latency (p50_ms)."""
    start = time.perf_counter()
    beir = read_beir(folder, split=split)
    collection, rate = _collection(beir, setting)
    judged = [qid for qid in beir.queries if qid in beir.qrels]
    texts = [beir.queries[q] for q in judged]
    extra: dict[str, float] = {}
    if through:
        from nestvec.eval.through import search_through

        if setting.mode != "dense":
            raise InputError(f"Search through an export target is dense only; the setting asks for {setting.mode}.")
        found, extra["p50_ms"] = search_through(collection, through, texts, k=k)
        run = dict(zip(judged, found, strict=True))
    else:
        hits = collection.search_batch(texts, k=k, mode=setting.mode, fusion=setting.fusion)
        run = {qid: {h.id: h.score for h in found} for qid, found in zip(judged, hits, strict=True)}
    return TaskResult(
        "retrieval",
        str(beir.path),
        setting.label + (f" via {through}" if through else ""),
        "ndcg@10",
        metrics.retrieval_scores(run, beir.qrels) | extra,
        len(judged),
        setting.bytes_per_vector(collection.encoder),
        rate,
        time.perf_counter() - start,
        run,
    )


def _collection(beir: BEIR, setting: Setting) -> tuple[Any, float]:
    from nestvec.recipe import Recipe, VectorSpec
    from nestvec.store.collection import Collection
    from nestvec.store.rebuild import changed_recipe, derive_collection

    made = setting.recipe
    # Whitening and principal axes are fitted on the corpus, so they are part of what gets embedded;
    # truncation is not.
    vectors = made.vectors if made.vectors.fitted else VectorSpec()
    corpus = (str(Path(beir.path).resolve()), made.encoder, vectors, made.long_documents, made.sparse)
    if corpus not in _corpora:
        # Embedded once, flat float32; every index setting is derived from its stored vectors.
        base = Recipe(encoder=made.encoder, vectors=vectors, long_documents=made.long_documents, sparse=made.sparse)
        collection = Collection.create(_scratch() / "corpus", base, model=setting.encoder())
        docs = [{"id": d, "text": f"{title} {text}".strip()} for d, (title, text) in beir.corpus.items()]
        report = collection.add([d for d in docs if d["text"]], batch_size=1024)
        _corpora[corpus] = (collection, report.added / report.seconds if report.seconds else 0.0)
    source, rate = _corpora[corpus]
    if made.vectors.fitted:
        recipe = changed_recipe(source.recipe, index=made.index)
    else:
        recipe = changed_recipe(source.recipe, index=made.index, dims=made.vectors.dims)
    if recipe == source.recipe:
        return source, rate
    key = (*corpus, recipe.index, recipe.vectors)
    if key not in _built:
        _built[key] = derive_collection(source, _scratch() / "derived", recipe)
    return _built[key], rate


def _scratch() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="nestvec-eval-"))
    atexit.register(shutil.rmtree, tmp, True)
    return tmp
