"""Corruption: every file of a collection damaged in turn, and what `nestvec check` made of it.

Two collections are built from the demo papers (HNSW + int8 codes + BM25 + whitening, and flat
binary codes with float rescoring) and closed. For every file in them — the recipe, the SQLite
store, the index checkpoint's config, codes, row table and float vectors, the fitted whitening —
a fresh copy is damaged one way: a byte flipped at a random offset (many per file; the store
gets the most, as its pages hold the documents), truncated to half or to nothing, deleted,
overwritten with random bytes, or garbage appended. Then:
- detected: `check_collection` fails (or refuses with a clear NestvecError); then `repair`
  either restores answers identical to the undamaged copy (derived files) or says that the
  store must come from a backup — never a traceback;
- harmless: check passes and the documents, stored vectors and answers to fixed queries equal
  the undamaged copy's (the flip hit bytes nothing reads, e.g. a page's free space);
- undetected: check passes but something differs. This must be 0.

The model the collection names is damaged too: a copy of MiniLM in a folder, each of its files
in turn (check loads it and compares every file's sha256 with the recipe's identity).

Usage: python reliability/corrupt.py [--flips 20] [--model-flips 4] [--seed 0] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAPERS = ROOT / "examples" / "papers.jsonl"
RECIPES = {
    "hnsw-int8-bm25-whiten": "minilm:index=hnsw:codes=int8:whiten=true",
    "flat-binary-rescore": "minilm:codes=binary",
}
QUERIES = ["binary embeddings", "contrastive sentence embeddings", "graph neural networks", "retrieval augmented"]
STRUCTURAL = ("truncate-half", "truncate-empty", "delete", "random-bytes", "append-garbage")


@dataclass(frozen=True)
class Case:
    collection: str
    file: str
    damage: str
    outcome: str  # detected, harmless, undetected
    after: str  # what repair did, or why nothing was needed


def build(folder: Path, recipes: dict[str, str], papers: int | None = None) -> dict[str, Path]:
    from nestvec import Collection

    rows = [json.loads(line) for line in PAPERS.open(encoding="utf-8")][:papers]
    docs = [{"id": r["id"], "text": r["title"] + "\n" + r["text"], "metadata": {"title": r["title"]}} for r in rows]
    docs += [{"id": r["id"] + "-title", "text": r["title"], "metadata": {"short": True}} for r in rows]
    made = {}
    for name, recipe in recipes.items():
        with Collection.create(folder / name, recipe) as collection:
            collection.add(docs)
            collection.delete([d["id"] for d in docs[:25]])  # tombstones and a log to replay
        made[name] = folder / name
    return made


def fingerprint(path: Path) -> dict[str, Any]:
    """What a user sees of a collection: its documents, stored vectors and answers."""
    from nestvec import Collection

    with Collection.open(path) as collection:
        _, vectors, _ = collection.stored_vectors()
        return {
            "documents": sorted((d.id, d.text, json.dumps(d.metadata, sort_keys=True)) for d in collection),
            "vectors": vectors.tobytes(),
            "answers": [[h.id for h in hits] for hits in collection.search_batch(QUERIES, k=10)],
            "sparse": [[h.id for h in collection.search(q, k=10, mode="sparse")] for q in QUERIES],
        }


def same(found: dict[str, Any], pristine: dict[str, Any]) -> bool:
    """Documents, stored vectors and keyword answers exactly; dense answers ≥ 9 of 10 alike, as an
    approximate index (HNSW, retrained int8 ranges) rebuilt from the same vectors ranks a few apart."""
    if any(found[key] != pristine[key] for key in ("documents", "vectors", "sparse")):
        return False
    return all(len(set(a) & set(b)) >= 9 for a, b in zip(found["answers"], pristine["answers"], strict=True))


def damage(path: Path, how: str, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    if how == "flip":
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        return f"flip byte {at}"
    if how == "truncate-half":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "truncate-empty":
        path.write_bytes(b"")
    elif how == "delete":
        path.unlink()
    elif how == "random-bytes":
        path.write_bytes(rng.randbytes(len(data)))
    elif how == "append-garbage":
        path.write_bytes(bytes(data) + rng.randbytes(4096))
    return how


def judge(path: Path, pristine: dict[str, Any], *, repair: bool = True) -> tuple[str, str]:
    from nestvec import check_collection, repair_collection
    from nestvec.errors import NestvecError

    try:
        found = check_collection(path)
    except NestvecError as exc:
        return "detected", f"check refused: {str(exc)[:160]}"
    if found.ok:
        try:
            alike = same(fingerprint(path), pristine)
        except NestvecError as exc:
            return "undetected", f"check passed, the collection failed: {str(exc)[:160]}"
        return ("harmless", "like the undamaged copy") if alike else ("undetected", "check passed, answers differ")
    if not repair:
        return "detected", "; ".join(f.detail[:160] for f in found.findings if not f.ok)
    try:
        repaired = repair_collection(path)
    except NestvecError as exc:
        return "detected", f"repair refused: {str(exc)[:160]}"
    try:
        if repaired.after.ok and same(fingerprint(path), pristine):
            return "detected", "repaired: like the undamaged copy"
    except NestvecError as exc:
        return "detected", f"repaired, then: {str(exc)[:160]}"
    failing = "; ".join(f.detail for f in repaired.after.findings if not f.ok)
    return "detected", f"repair left it failing: {failing}" if failing else "repaired, but answers differ"


def model_cases(workdir: Path, *, flips: int, rng: random.Random) -> list[Case]:
    """The model a collection was built with: a copy of MiniLM in a folder, each file damaged in
    turn and restored after; `check` loads the model and compares every file's sha256."""
    from nestvec.encoders import resolve_model

    model = workdir / "model"
    shutil.copytree(resolve_model("minilm")[1], model)
    [source] = build(workdir / "own-model", {"own-model": str(model)}, papers=100).values()
    pristine = fingerprint(source)
    cases: list[Case] = []
    for relative in sorted(str(p.relative_to(model)) for p in model.rglob("*") if p.is_file()):
        original = (model / relative).read_bytes()
        for how in ["flip"] * flips + list(STRUCTURAL):
            label = damage(model / relative, how, rng)
            outcome, after = judge(source, pristine, repair=False)
            cases.append(Case("own-model", f"model/{relative}", label, outcome, after))
            (model / relative).write_bytes(original)
        print(f"own-model model/{relative}: {flips + len(STRUCTURAL)} cases", file=sys.stderr, flush=True)
    return cases


def run_corruption(
    *,
    flips: int,
    seed: int,
    workdir: Path,
    recipes: dict[str, str] = RECIPES,
    papers: int | None = None,
    model_flips: int = 0,
) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    for name, source in build(workdir / "pristine", recipes, papers).items():
        pristine = fingerprint(source)
        for relative in sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()):
            if relative.endswith(".lock"):
                continue  # empty, holds no data: only its flock matters
            kinds = ["flip"] * (flips * 3 if relative.endswith("sqlite3") else flips) + list(STRUCTURAL)
            for how in kinds:
                copy = workdir / "case"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(source, copy)
                label = damage(copy / relative, how, rng)
                outcome, after = judge(copy, pristine)
                cases.append(Case(name, relative, label, outcome, after))
                if outcome == "undetected":
                    print(f"UNDETECTED {name} {relative} {label}: {after}", file=sys.stderr, flush=True)
            print(f"{name} {relative}: {len(kinds)} cases", file=sys.stderr, flush=True)
    if model_flips:
        cases += model_cases(workdir, flips=model_flips, rng=rng)
    return cases


def summary(cases: list[Case]) -> dict[str, Any]:
    per_file: dict[str, Counter[str]] = {}
    for case in cases:
        key = case.file.split("-")[0] if case.file.startswith("index/") else case.file
        key = "model/*" if key.startswith("model/") else key
        per_file.setdefault(key, Counter())[case.outcome] += 1
    return {
        "cases": len(cases),
        "outcomes": dict(Counter(c.outcome for c in cases)),
        "repaired_like_undamaged": sum(c.after.startswith("repaired: like") for c in cases),
        "repair_refused_store": sum(c.after.startswith("repair refused") for c in cases),
        "per_file": {k: dict(v) for k, v in sorted(per_file.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flips", type=int, default=20, help="byte flips per file (three times that for the store)")
    parser.add_argument("--model-flips", type=int, default=4, help="byte flips per file of the model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "reliability" / "results" / "corrupt.json")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="nestvec-corrupt-") as tmp:
        cases = run_corruption(flips=args.flips, seed=args.seed, workdir=Path(tmp), model_flips=args.model_flips)
    result = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "seconds": round(time.time() - started, 1),
        "recipes": RECIPES,
        "summary": summary(cases),
        "cases": [asdict(c) for c in cases],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    sys.exit(0 if all(c.outcome != "undetected" for c in cases) else 1)


if __name__ == "__main__":
    main()
