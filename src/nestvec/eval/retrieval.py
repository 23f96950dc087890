"""BEIR retrieval through a real collection, so it measures what would be served.

Settings that differ only in how they search (mode, fusion, weights) share one collection per
process: `--compare minilm:mode=dense,minilm:mode=hybrid` embeds the corpus once.
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
from nestvec.eval.tasks import Setting, TaskResult
from nestvec.index.spec import IndexSpec

DEFAULT = Setting()
_built: dict[tuple[Any, ...], tuple[Any, float]] = {}  # key -> (open collection, texts embedded per second)


def evaluate_retrieval(
    folder: str | Path, setting: Setting = DEFAULT, *, split: str = "test", k: int = 100, batch_size: int = 64
) -> TaskResult:
    """nDCG@10, Recall@10/100, MRR@10 and MAP@100 over the judged queries, top `k` per query."""
    if setting.whiten:
        raise InputError("Retrieval collections do not whiten; drop whiten=yes from the setting.")
    start = time.perf_counter()
    beir = read_beir(folder, split=split)
    collection, rate = _collection(beir, setting)
    judged = [qid for qid in beir.queries if qid in beir.qrels]
    hits = collection.search_batch(
        [beir.queries[q] for q in judged], k=k, mode=setting.mode, fusion=setting.search_fusion()
    )
    run = {qid: {h.id: h.score for h in found} for qid, found in zip(judged, hits, strict=True)}
    return TaskResult(
        "retrieval",
        str(beir.path),
        setting.label,
        "ndcg@10",
        metrics.retrieval_scores(run, beir.qrels),
        len(judged),
        setting.bytes_per_vector(setting.encoder()),
        rate,
        time.perf_counter() - start,
        run,
    )


def _collection(beir: BEIR, setting: Setting) -> tuple[Any, float]:
    from nestvec.store.collection import Collection

    key = (str(Path(beir.path).resolve()), *setting.retrieval_key())
    if key not in _built:
        tmp = Path(tempfile.mkdtemp(prefix="nestvec-eval-"))
        atexit.register(shutil.rmtree, tmp, True)
        index = IndexSpec.make(setting.index, setting.precision, rescore=setting.rescore)
        collection = Collection.create(tmp / "corpus", model=setting.encoder(), index=index, dims=setting.dims)
        docs = [{"id": d, "text": f"{title} {text}".strip()} for d, (title, text) in beir.corpus.items()]
        report = collection.add([d for d in docs if d["text"]], batch_size=1024)
        _built[key] = (collection, report.added / report.seconds if report.seconds else 0.0)
    return _built[key]
