"""Opening a 1M-word vector file in nestvec's compact format: time and RAM before lookups.

Writes a word2vec binary file of 1,000,000 words × 300 dims (synthetic words and random vectors:
opening cost depends on the size, not the meaning), converts it once, then opens it in fresh
processes and measures the seconds to open and the resident memory the open adds (RssAnon +
RssFile from /proc/self/status), then 10,000 random lookups.

Usage: python bench/wordvectors.py [--words 1000000] [--dim 300] [--out bench/results/wordvectors.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"

CHILD = """
import json, sys, time
def rss():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return sum(int(fields[k].split()[0]) for k in ("RssAnon", "RssFile")) / 1024
from nestvec.encoders.wordvectors import WordVectors
import numpy as np
before = rss()
start = time.perf_counter()
vectors = WordVectors(sys.argv[1])
opened = time.perf_counter() - start
after = rss()
rng = np.random.default_rng(0)
words = [vectors.word(int(i)) for i in rng.integers(0, vectors.count, 10_000)]
start = time.perf_counter()
found = sum(vectors.row(w) is not None for w in words)
lookups = time.perf_counter() - start
print(json.dumps({"open_s": opened, "open_rss_mib": after - before, "lookups_per_s": 10_000 / lookups,
                  "found": found, "rss_after_lookups_mib": rss() - before}))
"""


def write_file(path: Path, words: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    with path.open("wb") as fh:
        fh.write(f"{words} {dim}\n".encode())
        for lo in range(0, words, 10_000):
            block = rng.normal(size=(min(10_000, words - lo), dim)).astype("<f4")
            fh.write(b"".join(f"w{lo + i:07d} ".encode() + row.tobytes() for i, row in enumerate(block)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "wordvectors.json")
    args = parser.parse_args()
    from nestvec.encoders.wordvectors import convert

    CACHE.mkdir(parents=True, exist_ok=True)
    source = CACHE / f"words-{args.words}x{args.dim}.bin"
    folder = CACHE / f"words-{args.words}x{args.dim}"
    if not source.exists():
        write_file(source, args.words, args.dim)
    convert_s = None
    if not folder.exists():
        start = time.perf_counter()
        convert(source, folder)
        convert_s = time.perf_counter() - start
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    result = {
        "words": args.words,
        "dim": args.dim,
        "file_mib": source.stat().st_size / 2**20,
        "convert_s": convert_s,
        "runs": runs,
        "open_s_max": max(r["open_s"] for r in runs),
        "open_rss_mib_max": max(r["open_rss_mib"] for r in runs),
        "command": "python bench/wordvectors.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
