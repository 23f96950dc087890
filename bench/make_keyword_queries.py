"""Build the keyword-heavy query sets over the demo corpus (tests/data/hybrid/papers-keywords).

Dense embeddings blur exact names, codes and rare terms; these queries are made of exactly those.
For each sampled paper, a query is one of its rare identifiers (a token with capitals or digits,
such as a model, dataset or method name, found in at most 3 papers), optionally with a topic
word from the same paper's title. A paper is relevant when it contains every query term (grade 2 when
one is in its title, else 1). Queries split into dev (used to choose fusion defaults) and test
(reported only). Deterministic: seed 0.

Usage: python bench/make_keyword_queries.py
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "hybrid" / "papers-keywords"
NAME = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*\b")
TERM = re.compile(r"[^\W_]+")


def is_identifier(token: str) -> bool:
    """Names and codes: mixed case or digits inside, e.g. SimCSE, GloVe, word2vec, BERT-flow."""
    inner = token[1:]
    return len(token) >= 4 and (any(c.isupper() for c in inner) or any(c.isdigit() for c in token))


def main() -> None:
    papers = [json.loads(line) for line in (ROOT / "examples" / "papers.jsonl").open(encoding="utf-8")]
    texts = {p["id"]: f"{p['title']}\n{p['text']}" for p in papers}
    terms = {pid: set(TERM.findall(text.lower())) for pid, text in texts.items()}
    df = Counter(t for words in terms.values() for t in words)
    rng = random.Random(0)
    queries, qrels, seen = [], [], set()
    for paper in rng.sample(papers, len(papers)):
        names = [n for n in dict.fromkeys(NAME.findall(texts[paper["id"]])) if is_identifier(n)]
        names = [n for n in names if set(TERM.findall(n.lower())) and max(df[t] for t in TERM.findall(n.lower())) <= 3]
        if not names:
            continue
        name = rng.choice(names)
        words = [name]
        title = TERM.findall(paper["title"].lower())
        title = [w for w in title if len(w) >= 6 and w.isalpha() and w not in name.lower()]
        if title and rng.random() < 0.5:
            words.append(rng.choice(title))  # a topic word from the title, as people add one
        query = " ".join(words)
        if query.lower() in seen:
            continue
        seen.add(query.lower())
        needed = {t for w in words for t in TERM.findall(w.lower())}
        relevant = [pid for pid, ws in terms.items() if needed <= ws]
        qid = f"k{len(queries):03d}"
        queries.append({"_id": qid, "text": query})
        for pid in relevant:
            title = set(TERM.findall(next(p["title"] for p in papers if p["id"] == pid).lower()))
            qrels.append((qid, pid, 2 if needed & title else 1))
        if len(queries) == 200:
            break
    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    with (OUT / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for p in papers:
            fh.write(json.dumps({"_id": p["id"], "title": p["title"], "text": p["text"]}, ensure_ascii=False) + "\n")
    with (OUT / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for q in queries:
            fh.write(json.dumps(q, ensure_ascii=False) + "\n")
    for split, part in (("dev", range(0, 100)), ("test", range(100, 200))):
        ids = {f"k{i:03d}" for i in part}
        with (OUT / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            for qid, pid, grade in qrels:
                if qid in ids:
                    fh.write(f"{qid}\t{pid}\t{grade}\n")
    print(f"{len(queries)} queries, {len(qrels)} judgments -> {OUT}")


if __name__ == "__main__":
    main()
