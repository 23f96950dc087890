"""Sentences/s of MiniLM cut to its first L layers against the full model, ONNX Runtime, 2 threads.

The speed of a cut model depends on its shape only, so the bundled MiniLM stands for any model
fine-tuned from it (bench/train2d.py measures its own models the same way, while training jobs
share the machine). STS-B test's 2,758 sentences, batch 64, every setting in turn, best of
`--rounds` each.

Usage: python bench/layers_speed.py [--layers 2,3,4] [--rounds 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", default="2,3,4")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "layers-speed.json")
    args = parser.parse_args()
    from nestvec.encoders import load_encoder
    from nestvec.eval.readers import read_sts

    pairs = read_sts(SHARED / "sts" / "stsb-en-test.csv")
    texts = pairs.texts1 + pairs.texts2
    cuts: list[int | None] = [None, *(int(x) for x in args.layers.split(","))]
    encoders = {cut: load_encoder("minilm", backend="onnx", threads=2, layers=cut) for cut in cuts}
    best = dict.fromkeys(cuts, 0.0)
    for _ in range(args.rounds):
        for cut, encoder in encoders.items():
            start = time.perf_counter()
            encoder.encode(texts, batch_size=64, progress=False)
            best[cut] = max(best[cut], len(texts) / (time.perf_counter() - start))
    results: dict[str, Any] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "sentences": len(texts),
        "per_s": {str(cut or 6): round(rate, 1) for cut, rate in best.items()},
        "speedup": {str(cut): round(best[cut] / best[None], 2) for cut in cuts if cut},
    }
    print(json.dumps(results, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
