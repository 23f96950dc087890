"""The main job on the embedded defaults: build a collection of the demo papers and search it."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from nestvec import Collection, load_encoder
from nestvec.io.ingest import add_file
from nestvec.io.readers import RecordReader

HERE = Path(__file__).resolve().parent
QUERIES = [
    "binary quantization of embeddings for retrieval",
    "Matryoshka embeddings that can be truncated to fewer dimensions",
    "static word embeddings distilled from a transformer",
    "hyperbolic embeddings for hierarchies",
]


def main(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    start = time.perf_counter()
    encoder = load_encoder("minilm")
    print(f"model {encoder.name} ({encoder.dim} dims) loaded in {time.perf_counter() - start:.1f}s")
    reader = RecordReader(HERE / "papers.jsonl", text_fields=("title", "text"))
    with Collection.create(target, model=encoder, long_documents="split") as collection:
        report = add_file(collection, reader, progress=None)
        rate = report.added / report.seconds
        print(
            f"indexed {report.added} papers ({report.chunks} chunks) into {target} "
            f"in {report.seconds:.1f}s ({rate:.1f} docs/s)"
        )
        for query in QUERIES:
            t0 = time.perf_counter()
            hits = collection.search(query, k=3)
            print(f"\n{query!r}  ({(time.perf_counter() - t0) * 1000:.0f} ms)")
            for rank, hit in enumerate(hits, 1):
                print(f"  {rank}. [{hit.score:.3f}] {hit.text.split(chr(10), 1)[0]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("demo-collection"))
