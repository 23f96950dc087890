"""Load test of `nestvec serve`: throughput and latency at 1, 8 and 64 concurrent clients, on loopback.

The server runs in its own processes (HTTP, and the model with 2 threads); the clients run in another
process (asyncio keep-alive connections, one per client), back to back, STS-B test sentences:
- `--mode embed` (default): to /v1/embeddings as OpenAI clients do, `--sizes 1,32` sentences per
  request, with and without micro-batching (same server, same texts; only --no-batching differs),
  for each of `--backends`; with `--peers-python PY`, infinity's server (`infinity_emb v2`, torch,
  its dynamic batching) over the same MiniLM folder, under the same load (set up as bench/encode.py
  says: `pip install "infinity-emb[torch,server]"` in that environment);
- `--mode search`: as the query of /collections/papers/search (k=10, dense) over the 678 demo
  abstracts, the collection built by the nestvec that serves it.
`--srcs OLD/src,src` serves the same load from each checkout in turn in the same run, so old and
new code compare (search mode: in interleaved rounds; embed mode: once each, old first).

Usage: python bench/serve.py [--mode embed|search] [--levels 1,8,64] [--sizes 1,32] [--backends onnx,torch]
       [--peers-python PY] [--seconds 20] [--srcs A,B] [--no-unbatched] [--out FILE]
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def _request(mode: str, texts: list[str]) -> tuple[str, bytes]:
    if mode == "search":
        return "/collections/papers/search", json.dumps({"query": texts[0], "k": 10}).encode()
    one = texts[0] if len(texts) == 1 else texts
    return "/v1/embeddings", json.dumps({"input": one, "model": "minilm", "encoding_format": FORMAT}).encode()


def _ok(mode: str, status: int, payload: bytes, size: int) -> bool:
    if status != 200:
        return False
    if mode == "search":
        return len(json.loads(payload)["hits"]) == 10
    data = json.loads(payload)["data"]
    width = 2048 if FORMAT == "base64" else 384
    return len(data) == size and all(len(d["embedding"]) == width for d in data)


async def _clients(url: str, concurrency: int, seconds: float, mode: str = "embed", size: int = 1) -> dict:
    texts = sentences()
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(number: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        i = number * size
        while time.perf_counter() < stop:
            path, body = _request(mode, [texts[(i + j) % len(texts)] for j in range(size)])
            start = time.perf_counter()
            status, payload = await _post(reader, writer, path, body)
            latencies.append(time.perf_counter() - start)
            errors += not _ok(mode, status, payload, size)
            i += concurrency * size
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    wall = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "texts_per_request": size,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def run_clients(url: str, concurrency: int, seconds: float, mode: str = "embed", size: int = 1) -> dict:
    """The load comes from a separate process, so client work is not charged to the server's loop."""
    command = [sys.executable, __file__, "--client", url, "--concurrency", str(concurrency), "--seconds", str(seconds)]
    out = subprocess.run(
        [*command, "--mode", mode, "--sizes", str(size)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def servers(
    backends: list[str], threads: int, peers_python: str | None, srcs: list[Path], unbatched: bool = True
) -> dict[str, Callable[[Path], Any]]:
    """Each server to load, by label: a function of a log path giving a context that yields its URL.
    Every tree in `srcs` but the last is labelled with its path; the last one's labels are plain."""
    sys.path.insert(0, str(ROOT))
    from tests.serving import serve_process

    found: dict[str, Callable[[Path], Any]] = {}
    modes = (("batching", []), ("no_batching", ["--no-batching"]))[: 2 if unbatched else 1]
    for number, src in enumerate(srcs):
        tag = "" if number == len(srcs) - 1 else f" @ {src}"
        for backend in backends:
            for label, extra in modes:
                flags = ["--backend", backend, *extra]
                found[f"nestvec {backend} {label}{tag}"] = lambda log, f=flags, s=src: serve_process(
                    f, log=log, threads=threads, src=s
                )
    if peers_python:
        found["infinity"] = lambda log: infinity_server(peers_python, log)
    return found


@contextmanager
def infinity_server(peers_python: str, log: Path) -> Iterator[str]:
    """`infinity_emb v2` over the bundled MiniLM folder, torch on CPU, OpenAI routes under /v1."""
    import httpx

    from nestvec.encoders import resolve_model

    sys.path.insert(0, str(ROOT))
    from tests.serving import free_port

    port = free_port()
    command = [str(Path(peers_python).parent / "infinity_emb"), "v2", "--model-id", str(resolve_model("minilm")[1])]
    command += ["--served-model-name", "minilm", "--engine", "torch", "--device", "cpu", "--port", str(port)]
    command += ["--host", "127.0.0.1"]  # loopback only, as nestvec's own server in this bench
    command += ["--url-prefix", "/v1", "--no-bettertransformer", "--no-model-warmup"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"infinity did not start:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(levels: list[int], sizes: list[int], seconds: float, found: dict[str, Callable[[Path], Any]]) -> dict:
    results: dict = {}
    for label, start in found.items():
        with tempfile.TemporaryDirectory() as tmp, start(Path(tmp) / "server.log") as url:
            run_clients(url, 8, 2.0)  # warm-up: first batches, lazy imports, caches
            results[label] = []
            for size in sizes:
                for concurrency in levels:
                    row = run_clients(url, concurrency, seconds, size=size)
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
    parser.add_argument("--backend", default="auto", help="search mode: the server's --backend")
    parser.add_argument("--backends", default="onnx", help="embed mode: comma-separated --backend values to serve")
    parser.add_argument("--sizes", default="1", help="embed mode: comma-separated sentences per request")
    parser.add_argument("--peers-python", help="embed mode: interpreter of an environment with infinity-emb[server]")
    parser.add_argument("--mode", choices=("embed", "search"), default="embed")
    parser.add_argument("--rounds", type=int, default=3, help="search mode: interleaved rounds per tree")
    parser.add_argument("--srcs", default=str(ROOT / "src"), help="comma-separated source trees to serve, in turn")
    parser.add_argument("--no-unbatched", action="store_true", help="embed mode: skip the --no-batching servers")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        run = _clients(args.client, args.concurrency, args.seconds, args.mode, int(args.sizes))
        print(json.dumps(asyncio.run(run)))
        return
    levels = [int(x) for x in args.levels.split(",")]
    srcs = [Path(s).resolve() for s in args.srcs.split(",")]
    if args.mode == "search":
        search(args, levels, srcs)
        return
    args.out = args.out or ROOT / "bench" / "results" / "serve.json"
    sizes = [int(x) for x in args.sizes.split(",")]
    backends = args.backends.split(",")
    found = servers(backends, args.threads, args.peers_python, srcs, unbatched=not args.no_unbatched)
    results: dict[str, Any] = {"runs": measure(levels, sizes, args.seconds, found)}
    if not args.no_unbatched:
        results["ratios_at_max_concurrency"] = ratios(results["runs"], levels[-1], sizes, backends)
    if len(srcs) > 1:
        results["last_tree_over_first"] = tree_ratios(results["runs"], srcs[0])
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=1))
    results["setup"] = {
        "machine": platform.machine(),
        "accelerator": accelerator(),
        "python": platform.python_version(),
        "server_threads": args.threads,
        "seconds_per_level": args.seconds,
        "request": "STS-B test sentences per /v1/embeddings call (texts_per_request), base64 vectors",
        "command": "python bench/serve.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("saved", args.out)


def ratios(runs: dict, top: int, sizes: list[int], backends: list[str]) -> dict[str, float]:
    """Batching over no batching, and nestvec over infinity, in requests/s at the top concurrency."""

    def rate(label: str, size: int) -> float:
        return float(
            next(r["requests_per_s"] for r in runs[label] if (r["concurrency"], r["texts_per_request"]) == (top, size))
        )

    found: dict[str, float] = {}
    for size in sizes:
        for backend in backends:
            on = rate(f"nestvec {backend} batching", size)
            found[f"{backend} batching / no batching, {size} per request"] = on / rate(
                f"nestvec {backend} no_batching", size
            )
            if "infinity" in runs:
                found[f"{backend} batching / infinity, {size} per request"] = on / rate("infinity", size)
    return found


def tree_ratios(runs: dict, first: Path) -> dict[str, float]:
    """Requests/s of the last tree over the first, by server, clients and texts per request."""
    found: dict[str, float] = {}
    tag = f" @ {first}"
    for label, rows in runs.items():
        if label.endswith(tag):
            for old, new in zip(rows, runs[label.removesuffix(tag)], strict=True):
                key = f"{label.removesuffix(tag)}, {new['concurrency']} clients, {new['texts_per_request']} per request"
                found[key] = new["requests_per_s"] / old["requests_per_s"]
    return found


def search(args: argparse.Namespace, levels: list[int], srcs: list[Path]) -> None:
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
