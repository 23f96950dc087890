"""What a hash model's lexicon does to bench/hashed.py's typo copy of STS-B test, typo by typo.

Each typo is a non-word or spells another known word (a real-word typo); it is mended, left, or
replaced by a wrong word. Also counts the clean copy's tokens the lexicon rewrites.

Usage: python bench/hashed_typos.py MODEL_FOLDER   (bench/hashed.py leaves its model in /tmp/nestvec-hash-*/hash)
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hashed
import nestvec
from nestvec.encoders.hashed import HashEncoder, words


def main() -> None:
    model = nestvec.load_encoder(sys.argv[1])
    if not isinstance(model, HashEncoder) or model.lexicon is None:
        sys.exit(f"{sys.argv[1]} is not a hash model with a lexicon")
    lexicon = model.lexicon
    a0, b0, _ = hashed.sts_pairs(noisy=False)
    a1, b1, _ = hashed.sts_pairs(noisy=True)
    typos: Counter[str] = Counter()
    rewritten = tokens = 0
    for clean, noisy in zip(a0 + b0, a1 + b1, strict=True):
        wc, wn = words(clean), words(noisy)
        tokens += len(wc)
        rewritten += sum(x != y for x, y in zip(wc, lexicon.mend(wc), strict=True))
        if wc == wn:
            continue  # no word of 3+ letters, or a swap of two equal letters
        if len(wc) != len(wn):
            typos["split or joined a token"] += 1
            continue
        i = next(i for i, (x, y) in enumerate(zip(wc, wn, strict=True)) if x != y)
        kind = "real-word" if wn[i].lower() in lexicon.counts else "non-word"
        got = lexicon.mend(wn)[i]
        typos[f"{kind} {'mended' if got.lower() == wc[i].lower() else 'left' if got == wn[i] else 'wrong'}"] += 1
    result = {"typos": dict(sorted(typos.items())), "clean_tokens_rewritten": rewritten, "clean_tokens": tokens}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
