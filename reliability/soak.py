"""Soak: a real `nestvec serve` under a mixed load for minutes; its memory and descriptors sampled.

The server holds the 150-paper demo collection (BM25 on); 8 clients send the random mix of
reliability/load.py (embeddings, searches of every mode with filters, gets, adds, upserts,
deletes) back to back. Every 5 s the server's resident memory (VmRSS) and open descriptors are
read from /proc. Drift is the change from the end of the warm-up (the first 30 s, when the
model's arenas and caches fill) to the end; a leak grows linearly with requests.

Usage: python reliability/soak.py [--seconds 300] [--clients 8] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reliability.load import Tally, run_load  # noqa: E402
from tests.conftest import paper_docs  # noqa: E402
from tests.serving import served  # noqa: E402

WARM_UP_S = 30.0


def _sample(pid: int) -> tuple[float, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return rss_kb / 1024, len(list(Path(f"/proc/{pid}/fd").iterdir()))


def soak(*, seconds: float, clients: int, workdir: Path) -> dict[str, Any]:
    import nestvec

    with nestvec.Collection.create(workdir / "papers", bm25=True) as collection:
        collection.add(paper_docs(150))
    with served([str(workdir / "papers")], log=workdir / "server.log") as (url, proc):
        result: dict[str, Tally] = {}
        load = threading.Thread(
            target=lambda: result.setdefault(
                "tally", run_load(url, collection="papers", clients=clients, seconds=seconds)
            )
        )
        start = time.monotonic()
        load.start()
        samples = []
        while load.is_alive():
            rss, fds = _sample(proc.pid)
            samples.append({"t": round(time.monotonic() - start, 1), "rss_mb": round(rss, 1), "fds": fds})
            load.join(timeout=5)
    tally = result["tally"]
    settled = [s for s in samples if s["t"] >= WARM_UP_S] or samples
    return {
        "seconds": seconds,
        "clients": clients,
        "load": tally.to_dict(),
        "requests_per_s": round(tally.requests / seconds, 1),
        "rss_mb_after_warm_up": settled[0]["rss_mb"],
        "rss_mb_end": settled[-1]["rss_mb"],
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "rss_drift_mb": round(settled[-1]["rss_mb"] - settled[0]["rss_mb"], 1),
        "fds_after_warm_up": settled[0]["fds"],
        "fds_end": settled[-1]["fds"],
        "fds_max": max(s["fds"] for s in samples),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "reliability" / "results" / "soak.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nestvec-soak-") as tmp:
        result = soak(seconds=args.seconds, clients=args.clients, workdir=Path(tmp))
    result = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    sys.exit(0 if result["load"]["server_errors"] == 0 else 1)


if __name__ == "__main__":
    main()
