"""Training and held-out sets built from the bundled demo papers for bench/train.py.

Papers are split by id (sha1 of the id, so the split never depends on file order): 60% train,
20% dev, 20% test. Training sees only train papers' title→abstract pairs; the dev split picks
settings; the test split is a BEIR folder (queries: held-out titles, corpus: every abstract)
scored once at the end. No paper is in two splits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

SPLITS = ("train", "dev", "test")


def split_of(paper_id: str) -> str:
    bucket = int(hashlib.sha1(paper_id.encode()).hexdigest(), 16) % 10
    return "train" if bucket < 6 else "dev" if bucket < 8 else "test"


def _papers(papers: Path) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in papers.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r.get("title") and r.get("text")]


def write_title_pairs(papers: Path, out: Path) -> Path:
    """Train papers as (anchor: title, positive: abstract) rows for in-batch negatives."""
    rows = [r for r in _papers(papers) if split_of(r["id"]) == "train"]
    out.write_text("".join(json.dumps({"anchor": r["title"], "positive": r["text"]}) + "\n" for r in rows))
    return out


def write_title_beir(papers: Path, folder: Path) -> Path:
    """A BEIR folder: every abstract in the corpus; dev and test titles as queries (qrels/dev.tsv, qrels/test.tsv)."""
    rows = _papers(papers)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": r["id"], "text": r["text"]}) + "\n" for r in rows))
    held = [r for r in rows if split_of(r["id"]) != "train"]
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": "q" + r["id"], "text": r["title"]}) + "\n" for r in held)
    )
    for split in ("dev", "test"):
        lines = [f"q{r['id']}\t{r['id']}\t1" for r in held if split_of(r["id"]) == split]
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n")
    return folder


def write_ict_pairs(passages: list[str], out: Path, *, seed: int, keep: float = 0.1) -> Path:
    """Inverse Cloze Task pairs (Lee et al., 2019, "Latent Retrieval for Weakly Supervised Open
    Domain Question Answering"): one sentence of a passage is the query, the passage is the
    positive, with that sentence taken out (kept in a `keep` share of pairs, as in the paper, so
    the model still learns that word overlap matters). Passages of one sentence give no pair.
    Built from unlabeled text only: no query or judgement of any test set is read."""
    import random
    import re

    rng = random.Random(seed)
    rows = []
    for passage in passages:
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", passage) if len(s.split()) >= 4]
        if len(sentences) < 2:
            continue
        i = rng.randrange(len(sentences))
        rest = sentences if rng.random() < keep else sentences[:i] + sentences[i + 1 :]
        rows.append({"anchor": sentences[i], "positive": " ".join(rest)})
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def write_query_pairs(generated: Path, passages: list[str], out: Path, *, top: int = 10) -> Path:
    """The generated (question, passage) rows of bench/gen_queries.py that survive round-trip
    consistency filtering (Alberti et al., 2019; as in Promptagator and InPars-v2): the base MiniLM
    must rank the question's own passage within the `top` of all `passages`. That drops the 135M
    model's off-topic questions (a few-shot example copied, a loop) without a hand-made list. A
    question asked of several passages keeps only its best-ranked one, so no batch holds it twice.
    Reads generated questions and unlabeled passages only: no query or judgement of a test set."""
    import numpy as np

    from nestvec.encoders import load_encoder

    rows = [json.loads(line) for line in generated.read_text(encoding="utf-8").splitlines() if line]
    encoder = load_encoder("minilm")
    index = {p: i for i, p in enumerate(passages)}
    rows = [r for r in rows if r["positive"] in index]
    scores = encoder.encode([r["anchor"] for r in rows]) @ encoder.encode(passages).T
    own = scores[np.arange(len(rows)), [index[r["positive"]] for r in rows]]
    ranks = (scores > own[:, None]).sum(axis=1)
    best: dict[str, tuple[int, dict[str, str]]] = {}
    for rank, row in zip(ranks.tolist(), rows, strict=True):
        key = row["anchor"].lower()
        if rank < top and (key not in best or rank < best[key][0]):
            best[key] = (rank, row)
    out.write_text("".join(json.dumps(row) + "\n" for _, row in best.values()))
    return out


def question_split(question: str) -> str:
    """Generated questions split by text (sha1): 80% train, 20% dev, so a question asked of several
    passages lands on one side only."""
    return "dev" if int(hashlib.sha1(question.lower().encode()).hexdigest(), 16) % 5 == 0 else "train"


def teacher_picks(
    generated: Path, passages: list[str], ranks: tuple[int, ...], seed: int
) -> Iterator[tuple[str, list[tuple[int, float]]]]:
    """Each distinct train-split generated question with its passages at `ranks` of the base
    MiniLM's full-width order and one at random: (passage index, that cosine) each, the teacher
    both teacher writers label with."""
    import random

    import numpy as np

    from nestvec.encoders import load_encoder

    rows = [json.loads(line) for line in generated.read_text(encoding="utf-8").splitlines() if line]
    questions = list(dict.fromkeys(r["anchor"] for r in rows if question_split(r["anchor"]) == "train"))
    encoder = load_encoder("minilm")
    scores = encoder.encode(questions) @ encoder.encode(passages).T
    rng = random.Random(seed)
    for question, row in zip(questions, scores, strict=True):
        order = np.argsort(-row)
        chosen = [int(order[r]) for r in ranks] + [rng.randrange(len(passages))]
        yield question, [(j, float(row[j])) for j in chosen]


def write_teacher_pairs(
    generated: Path, passages: list[str], out: Path, *, ranks: tuple[int, ...] = (0, 1, 4, 9, 29, 99), seed: int = 0
) -> Path:
    """Scored (question, passage) pairs labelled by the base MiniLM's own full-width cosine: for
    every distinct train-split generated question, its passages at `ranks` among all `passages`
    and one at random. CoSENT over a Matryoshka ladder on these teaches each prefix to order a
    question's passages as the full 384 dims do (Matryoshka-Adaptor's top-k similarity loss, in
    pair form), the ordering a short prefix loses on retrieval. Reads generated questions and
    unlabeled passages only: no query or judgement of a test set. Scores are cosine × 5 (STS's
    0–5 range, clipped at 0), as `read_training(..., "scored")` reads them."""
    import csv

    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        for question, picked in teacher_picks(generated, passages, ranks, seed):
            for j, score in picked:
                writer.writerow([question, passages[j], f"{max(score, 0.0) * 5:.4f}"])
    return out


def write_teacher_lists(
    generated: Path,
    passages: list[str],
    out: Path,
    *,
    ranks: tuple[int, ...] = (0, 1, 3, 9, 30),
    words: int = 80,
    seed: int = 0,
) -> Path:
    """The same teacher as `write_teacher_pairs`, one row per question: its passages at `ranks`
    and one at random with the base MiniLM's full-width cosines, for the listwise loss
    (`read_training(..., "ranked")`), which compares a question's passages with each other.
    Passages are cut to their first `words` words after scoring: a batch's texts are padded to its
    longest, and with eleven whole passages a row a step of 16 rows took about a minute here."""
    with out.open("w", encoding="utf-8") as f:
        for question, picked in teacher_picks(generated, passages, ranks, seed):
            record = {"anchor": question, "passages": [" ".join(passages[j].split()[:words]) for j, _ in picked],
                      "scores": [round(score, 4) for _, score in picked]}  # fmt: skip
            f.write(json.dumps(record) + "\n")
    return out
