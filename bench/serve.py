"""Load test of `nestvec serve`: throughput and latency at 1, 8 and 64 concurrent clients, on loopback.

The server runs in its own process (2 model threads); the clients run in another process
(asyncio keep-alive connections, one per client), back to back, one STS-B test sentence per request:
- `--mode embed` (default): to /v1/embeddings as OpenAI clients do, with and without micro-batching
  (same server, same texts; only --no-batching differs);
- `--mode search`: as the query of /collections/papers/search (k=10, dense) over the 678 demo
  abstracts, the collection built by the nestvec that serves it. `--srcs OLD/src,src` serves the
  same load from two checkouts one after the other in the same run, so old and new code compare.

Usage: python bench/serve.py [--mode embed|search] [--levels 1,8,64] [--seconds 20] [--srcs A,B] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STS = ROOT / "tests" / "data" / "sts" / "stsb-en-test.csv"
FORMAT = "base64"  # what OpenAI's Python client asks for unless told otherwise


def sentences() -> list[str]:
    with STS.open(encoding="utf-8") as fh:
        return list(dict.fromkeys(s for row in csv.reader(fh) for s in row[:2]))


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes
) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 POST. Plain asyncio streams, because the load generator shares the
    machine's two cores with the server: httpx cost ~3x the CPU per request here, and its shared
    pool capped 64 connections at about 110 requests/s even against /healthz."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    header = await reader.readuntil(b"\r\n\r\n")
    lines = header.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:"))
    return int(lines[0].split()[1]), await reader.readexactly(length)


def _request(mode: str, text: str) -> tuple[str, bytes]:
    if mode == "search":
        return "/collections/papers/search", json.dumps({"query": text, "k": 10}).encode()
    return "/v1/embeddings", json.dumps({"input": text, "model": "minilm", "encoding_format": FORMAT}).encode()


def _ok(mode: str, status: int, payload: bytes) -> bool:
    if status != 200:
        return False
    if mode == "search":
        return len(json.loads(payload)["hits"]) == 10
    return len(json.loads(payload)["data"][0]["embedding"]) == (2048 if FORMAT == "base64" else 384)


async def _clients(url: str, concurrency: int, seconds: float, mode: str = "embed") -> dict:
    texts = sentences()
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(number: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        i = number
        while time.perf_counter() < stop:
            path, body = _request(mode, texts[i % len(texts)])
            start = time.perf_counter()
            status, payload = await _post(reader, writer, path, body)
            latencies.append(time.perf_counter() - start)
            errors += not _ok(mode, status, payload)
            i += concurrency
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    wall = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def run_clients(url: str, concurrency: int, seconds: float, mode: str = "embed") -> dict:
    """The load comes from a separate process, so client work is not charged to the server's loop."""
    command = [sys.executable, __file__, "--client", url, "--concurrency", str(concurrency), "--seconds", str(seconds)]
    out = subprocess.run(
        [*command, "--mode", mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(levels: list[int], seconds: float, threads: int, backend: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.serving import serve_process

    results: dict = {}
    modes = (("batching", ["--backend", backend]), ("no_batching", ["--backend", backend, "--no-batching"]))
    for label, flags in modes:
        with (
            tempfile.TemporaryDirectory() as tmp,
            serve_process(flags, log=Path(tmp) / "server.log", threads=threads) as url,
        ):
            results[label] = []
            for concurrency in levels:
                row = run_clients(url, concurrency, seconds)
                results[label].append(row)
                print(label, row, flush=True)
    return results


def measure_search(
    levels: list[int], seconds: float, threads: int, backend: str, srcs: list[Path], rounds: int
) -> dict:
    """Search load on each checkout in turn, `rounds` times interleaved (this shared machine's
    throughput drifts by ±20% between minutes); each checkout builds its own demo collection."""
    sys.path.insert(0, str(ROOT))
    from tests.serving import serve_process

    runs: dict[str, list[list[dict]]] = {str(src): [] for src in srcs}
    with tempfile.TemporaryDirectory() as tmp:
        for number, src in enumerate(srcs):
            build = [
                sys.executable,
                "-m",
                "nestvec.cli.main",
                "index",
                "build",
                str(ROOT / "examples" / "papers.jsonl"),
            ]
            build += [str(Path(tmp) / f"papers-{number}"), "--text-field", "title", "--text-field", "text"]
            subprocess.run(
                [*build, "--no-progress"], check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(src)}
            )
        for _ in range(rounds):
            for number, src in enumerate(srcs):
                papers = Path(tmp) / f"papers-{number}"
                served = Path(tmp) / "papers"
                papers.rename(served)  # served as 'papers', the name the clients ask for
                flags = [str(served), "--backend", backend]
                try:
                    with serve_process(flags, log=Path(tmp) / "server.log", threads=threads, src=src) as url:
                        rows = [run_clients(url, concurrency, seconds, "search") for concurrency in levels]
                finally:
                    served.rename(papers)
                runs[str(src)].append(rows)
                print(src, [round(r["requests_per_s"], 1) for r in rows], flush=True)
    results: dict = {}
    for src, rounds_done in runs.items():
        results[src] = []
        for i in range(len(levels)):
            rates = sorted(r[i]["requests_per_s"] for r in rounds_done)
            median = rates[len(rates) // 2]
            row = next(r[i] for r in rounds_done if r[i]["requests_per_s"] == median)
            results[src].append({**row, "requests_per_s_rounds": [r[i]["requests_per_s"] for r in rounds_done]})
    return results


def accelerator() -> str:
    """The GPU the server's torch backend would pick, if any (the ONNX backend always runs on CPU)."""
    try:
        import torch
    except ImportError:
        return "none (no torch)"
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,64")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", default="auto", help="the server's --backend: auto (ONNX on CPU), torch or onnx")
    parser.add_argument("--mode", choices=("embed", "search"), default="embed")
    parser.add_argument("--rounds", type=int, default=3, help="search mode: interleaved rounds per tree")
    parser.add_argument("--srcs", default=str(ROOT / "src"), help="search mode: comma-separated source trees to serve")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(_clients(args.client, args.concurrency, args.seconds, args.mode))))
        return
    levels = [int(x) for x in args.levels.split(",")]
    if args.mode == "search":
        search(args, levels)
        return
    args.out = args.out or ROOT / "bench" / "results" / "serve.json"
    results = measure(levels, args.seconds, args.threads, args.backend)
    top = levels[-1]
    on = next(r for r in results["batching"] if r["concurrency"] == top)
    off = next(r for r in results["no_batching"] if r["concurrency"] == top)
    results["speedup_at_max_concurrency"] = on["requests_per_s"] / off["requests_per_s"]
    results["setup"] = {
        "machine": platform.machine(),
        "accelerator": accelerator(),
        "python": platform.python_version(),
        "server_threads": args.threads,
        "backend": args.backend,
        "seconds_per_level": args.seconds,
        "request": "one STS-B test sentence per /v1/embeddings call",
        "command": "python bench/serve.py " + " ".join(sys.argv[1:]),
    }
    print(f"micro-batching at {top} clients: {results['speedup_at_max_concurrency']:.2f}x the requests/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("saved", args.out)


def search(args: argparse.Namespace, levels: list[int]) -> None:
    srcs = [Path(s).resolve() for s in args.srcs.split(",")]
    results = measure_search(levels, args.seconds, args.threads, args.backend, srcs, args.rounds)
    if len(srcs) > 1:
        first, last = results[str(srcs[0])], results[str(srcs[-1])]
        results["ratio_last_to_first"] = {
            str(a["concurrency"]): b["requests_per_s"] / a["requests_per_s"] for a, b in zip(first, last, strict=True)
        }
        print("requests/s, last tree / first:", results["ratio_last_to_first"])
    results["setup"] = {
        "machine": platform.machine(),
        "server_threads": args.threads,
        "backend": args.backend,
        "seconds_per_level": args.seconds,
        "rounds": args.rounds,
        "statistic": "median requests/s over the rounds (each round serves every tree once, in turn)",
        "request": "one STS-B test sentence as the query of /collections/papers/search (k=10, dense)",
        "command": "python bench/serve.py " + " ".join(sys.argv[1:]),
    }
    out = args.out or ROOT / "bench" / "results" / "serve-search.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("saved", out)


if __name__ == "__main__":
    main()
