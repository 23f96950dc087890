"""Build a semantic retrieval dev set from STS-B train (tests/data/hybrid/stsb-paraphrase-dev).

Corpus: every distinct second sentence of STS-B train; queries: first sentences of pairs scored
≥ 4.0 (near paraphrases), each relevant to its partner. Paired with the keyword dev set, it is
what the hybrid fusion defaults are chosen on (never on msmarco-5k's test judgments).
Usage: python bench/make_paraphrase_dev.py
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "tests" / "data" / "hybrid" / "stsb-paraphrase-dev"


def key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def main() -> None:
    with (SHARED / "sts" / "stsb-en-train.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if len(r) >= 3]
    rows = [r for r in rows if r[2].replace(".", "", 1).isdigit()]
    corpus = {key(r[1]): r[1] for r in rows}
    pairs = [(r[0], r[1]) for r in rows if float(r[2]) >= 4.0 and r[0] != r[1]]
    random.Random(0).shuffle(pairs)
    pairs = list({q: (q, d) for q, d in pairs}.values())[:300]
    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    with (OUT / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for doc_id, text in corpus.items():
            fh.write(json.dumps({"_id": doc_id, "title": "", "text": text}, ensure_ascii=False) + "\n")
    with (OUT / "queries.jsonl").open("w", encoding="utf-8") as q, (OUT / "qrels" / "dev.tsv").open("w") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for n, (query, doc) in enumerate(pairs):
            q.write(json.dumps({"_id": f"p{n:03d}", "text": query}, ensure_ascii=False) + "\n")
            r.write(f"p{n:03d}\t{key(doc)}\t1\n")
    (OUT / "LICENSE.md").write_text("Derived from the STS Benchmark (train split), CC BY-SA 4.0.\n")
    print(f"{len(corpus)} documents, {len(pairs)} queries -> {OUT}")


if __name__ == "__main__":
    main()
