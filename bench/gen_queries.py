"""Synthetic queries for unlabeled passages, written by the bundled SmolLM2-135M-Instruct
(query generation as in InPars, Bonifacio et al., 2022, and GPL, Wang et al., 2022): for each
passage the model is asked for the short search question it answers; (question, passage) pairs
are written as jsonl rows for `nestvec train --kind pairs`. Greedy decoding, seeded passage order,
questions that copy most of the passage or come out empty are dropped. Only passages are read:
no query or judgement of any test set.

Usage: python bench/gen_queries.py PASSAGES.jsonl OUT.jsonl [--limit N] [--max-new-tokens 24]
       (PASSAGES: BEIR corpus rows with "text" and optional "title"; OUT grows batch by batch and a
       rerun skips the passages already in it)
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

# Few-shot completion: the 135M model copies or comments on the passage when asked in a chat, but
# continues a list of passage/question examples with a question. The examples are made up here.
EXAMPLES = (
    ("The Great Barrier Reef is the world's largest coral reef system, off the coast of Queensland, Australia.",
     "where is the great barrier reef"),
    ("Aspirin is used to reduce fever and relieve mild to moderate pain such as headaches and muscle aches.",
     "what is aspirin used for"),
    ("A standard marathon is 42.195 kilometres long; most runners finish it in four to five hours.",
     "how long is a marathon"),
)  # fmt: skip
PROMPT = "".join(f"Passage: {p}\nQuestion: {q}\n\n" for p, q in EXAMPLES) + "Passage: {passage}\nQuestion:"


def questions(passages: list[str], *, max_new_tokens: int, batch_size: int = 8) -> Iterator[list[tuple[str, str]]]:
    """(passage, question) pairs, a batch at a time (so a long run can save as it goes)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nestvec.encoders import resolve_model
    from nestvec.encoders.decoder.source import decoder_source

    folder = decoder_source(resolve_model("smollm2")[1]).folder
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    for start in range(0, len(passages), batch_size):
        chunk = passages[start : start + batch_size]
        chats = [PROMPT.format(passage=p[:1200]) for p in chunk]
        batch = tokenizer(chats, return_tensors="pt", padding=True)
        with torch.inference_mode():
            made = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id
            )
        texts = tokenizer.batch_decode(made[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        yield [(p, t.strip().split("\n")[0].strip().strip('"')) for p, t in zip(chunk, texts, strict=True)]


def kept(question: str, passage: str) -> bool:
    words, lowered = question.lower().split(), passage.lower()
    if len(words) < 3:
        return False
    inside = sum(w in lowered for w in words) / len(words)
    return inside < 0.9  # a sentence lifted from the passage is not a question about it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("passages", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.passages.read_text(encoding="utf-8").split("\n") if line.strip()]
    passages = [f"{r.get('title', '')} {r['text']}".strip() for r in rows]
    random.Random(args.seed).shuffle(passages)
    passages = passages[: args.limit or None]
    # Appended batch by batch; a rerun skips the passages that already have a question in OUT.
    done = set()
    if args.out.exists():
        done = {json.loads(line)["positive"] for line in args.out.read_text(encoding="utf-8").splitlines() if line}
    todo = [p for p in passages if p not in done]
    start, pairs = time.perf_counter(), 0
    with args.out.open("a", encoding="utf-8") as out:
        for made in questions(todo, max_new_tokens=args.max_new_tokens):
            kept_rows = [(p, q) for p, q in made if kept(q, p)]
            out.write("".join(json.dumps({"anchor": q, "positive": p}) + "\n" for p, q in kept_rows))
            out.flush()
            pairs += len(kept_rows)
    seconds = time.perf_counter() - start
    print(json.dumps({"passages": len(todo), "skipped": len(done), "pairs": pairs, "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
