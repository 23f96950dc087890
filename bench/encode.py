"""Encoding speed: nestvec's backends vs sentence-transformers, same model, same texts, same run.

Every (path, dataset) measurement is a fresh subprocess, so peak RSS is that path's alone; the
paths alternate round by round and the best round is kept. Vectors are compared with
sentence-transformers' (cosine), quality of each path is measured on STS-B test and msmarco-5k,
and re-indexing the demo corpus is timed with an embedding cache cold and warm.

On a CUDA machine the GPU paths run too (`--devices cuda` runs only them): sentence-transformers fp16
at its default batch of 32 and at 256, against nestvec torch fp16 with batches of 256 texts / 65,536
tokens, on the texts repeated (GPU_REPEAT) so that each timing lasts long enough to mean something.

The peers users would pick instead run with `--peers-python` (an interpreter of a separate
environment: infinity pins older sentence-transformers, transformers and numpy): fastembed, pointed
at a local ONNX export of the same MiniLM weights (last_hidden_state, its MEAN pooling and
normalization: its custom-model path, no hub), and infinity's Python engine (torch) over the same
model folder; every path truncates at the model's 256 tokens. Set up the peers once with
`python -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.13.0 && /tmp/peers/bin/pip
install fastembed "infinity-emb[torch]"`.

Usage: python bench/encode.py [--threads 2] [--rounds 2] [--devices cpu,cuda] [--skip-quality]
       [--peers-python /tmp/peers/bin/python] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from search import cpu_flags

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
STS = SHARED / "sts" / "stsb-en-test.csv"
if not STS.exists():  # a device machine gets the repository alone, with its test copy of STS-B
    STS = ROOT / "tests" / "data" / "sts" / "stsb-en-test.csv"
MSMARCO = SHARED / "retrieval" / "msmarco-5k"
PAPERS = ROOT / "examples" / "papers.jsonl"

# name -> (library, backend, compute, batch size, token budget per batch; 0 = the library's own)
Spec = tuple[str, str, str, int, int]
PATHS: dict[str, Spec] = {
    "sentence-transformers": ("st", "", "fp32", 32, 0),
    "nestvec torch fp32": ("nestvec", "torch", "fp32", 64, 0),
    "nestvec onnx fp32": ("nestvec", "onnx", "fp32", 64, 0),
    "nestvec onnx int8": ("nestvec", "onnx", "int8", 64, 0),
    "nestvec torch bf16": ("nestvec", "torch", "bf16", 64, 0),
}
PEER_PATHS: dict[str, Spec] = {
    "fastembed": ("fastembed", "onnx", "fp32", 256, 0),  # its default batch
    "infinity": ("infinity", "torch", "fp32", 32, 0),  # its default batch
}
GPU_PATHS: dict[str, Spec] = {
    "sentence-transformers fp16": ("st", "", "fp16", 32, 0),
    "sentence-transformers fp16 batch 256": ("st", "", "fp16", 256, 0),
    "nestvec torch fp16": ("nestvec", "torch", "fp16", 256, 65536),
}
GPU_REPEAT = {"stsb_test_sentences": 8, "demo_abstracts": 16}

CHILD = """
import json, sys, time
import numpy as np
threads, library, backend, compute, batch, tokens, device, path, out = sys.argv[1:10]
threads, batch, tokens = int(threads), int(batch), int(tokens)
import torch
torch.set_num_threads(threads)
texts = json.load(open(path))
if library == "nestvec":
    import nestvec
    model = nestvec.load_encoder("minilm", backend=backend, compute=compute, threads=threads, device=device)
    budget = {"max_batch_tokens": tokens} if tokens else {}
    run = lambda t: model.encode(t, batch_size=batch, progress=False, **budget)
elif library == "fastembed":
    import os
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType
    TextEmbedding.add_custom_model(
        model="nestvec-bench/minilm", pooling=PoolingType.MEAN, normalization=True,
        sources=ModelSource(hf="nestvec-bench/minilm"), dim=384, model_file="model.onnx",
    )
    model = TextEmbedding("nestvec-bench/minilm", specific_model_path=os.environ["FASTEMBED_FOLDER"], threads=threads)
    run = lambda t: np.stack(list(model.embed(t, batch_size=batch)))
elif library == "infinity":
    import asyncio, os
    from infinity_emb import AsyncEmbeddingEngine, EngineArgs
    engine = AsyncEmbeddingEngine.from_args(EngineArgs(
        model_name_or_path=os.environ["MINILM_FOLDER"], engine="torch", device="cpu", batch_size=batch,
        bettertransformer=False, model_warmup=False,
    ))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(engine.astart())
    async def embed(t):
        vectors, _ = await engine.embed(sentences=t)
        return np.array(vectors)
    run = lambda t: loop.run_until_complete(embed(t))
else:
    from sentence_transformers import SentenceTransformer
    from nestvec.encoders import resolve_model
    model = SentenceTransformer(str(resolve_model("minilm")[1]), device=device)
    if compute == "fp16":
        model = model.half()
    run = lambda t: model.encode(t, batch_size=batch, show_progress_bar=False)
run(texts[:1024 if device == "cuda" else 64])
if device == "cuda":
    torch.cuda.synchronize()
start = time.perf_counter()
vectors = run(texts)
if device == "cuda":
    torch.cuda.synchronize()
seconds = time.perf_counter() - start
np.save(out, np.asarray(vectors, dtype=np.float32))
# VmHWM: this program's own peak; ru_maxrss keeps the forking parent's across exec
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"seconds": seconds, "texts_per_s": len(texts) / seconds, "peak_rss_mb": peak}))
if library == "infinity":
    loop.run_until_complete(engine.astop())  # else its worker threads keep the process from exiting
"""


def datasets() -> dict[str, list[str]]:
    with STS.open(encoding="utf-8") as fh:
        sentences = list(dict.fromkeys(s for row in csv.reader(fh) for s in row[:2]))
    abstracts = [json.loads(line)["text"] for line in PAPERS.open(encoding="utf-8")]
    return {"stsb_test_sentences": sentences, "demo_abstracts": abstracts}


def model_flops(texts: list[str]) -> float:
    """Multiply-adds ×2 of MiniLM's encoder on these texts, at their real (unpadded) lengths."""
    from nestvec.encoders import load_encoder

    encoder = load_encoder("minilm")
    config = encoder.folder.config()  # type: ignore[attr-defined]
    h, inner, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    lengths = np.minimum(np.array(encoder.token_counts(texts)), encoder.max_tokens).astype(np.float64)
    per_layer = 2 * lengths * (4 * h * h + 2 * h * inner) + 4 * lengths**2 * h
    return float(layers * per_layer.sum())


PEERS: dict[str, str] = {}  # library -> the interpreter that runs it (--peers-python)
PEER_ENV: dict[str, str] = {}  # where the peers find the model: set up by peer_folders


def peer_folders(work: Path) -> None:
    """The MiniLM folder for infinity, and for fastembed an ONNX export of it (last_hidden_state)."""
    import torch
    from transformers import AutoModel

    from nestvec.encoders import resolve_model

    folder = Path(resolve_model("minilm")[1])
    onnx = work / "fastembed-minilm"
    onnx.mkdir()
    for name in ("config.json", "tokenizer.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(folder / name, onnx / name)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    max_tokens = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    (onnx / "tokenizer_config.json").write_text(json.dumps({**tokenizer_config, "model_max_length": max_tokens}))
    # eager attention: the graph optimum exports and fastembed's own hub models carry
    bert = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):  # by keyword: the positional order differs between transformers releases
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    model = Hidden()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])  # padded: an all-ones mask may be traced away
    example = (torch.full((2, 8), 1000), mask, torch.zeros(2, 8, dtype=torch.int64))
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(
            model,
            example,
            str(onnx / "model.onnx"),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    PEER_ENV.update({"FASTEMBED_FOLDER": str(onnx), "MINILM_FOLDER": str(folder), "HF_HUB_OFFLINE": "1"})


def measure(spec: Spec, texts_file: Path, threads: int, device: str, out: Path) -> dict[str, float]:
    library, backend, compute, batch, tokens = spec
    args = [str(threads), library, backend, compute, str(batch), str(tokens), device, str(texts_file), str(out)]
    python = PEERS.get(library, sys.executable)
    env = {**os.environ, **PEER_ENV}
    done = subprocess.run([python, "-c", CHILD, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def speed(paths: dict[str, Spec], threads: int, rounds: int, device: str, work: Path) -> dict:
    results: dict[str, dict] = {}
    for name, texts in datasets().items():
        if device == "cuda":
            texts = texts * GPU_REPEAT[name]
        texts_file = work / f"{name}.json"
        texts_file.write_text(json.dumps(texts))
        flops = model_flops(texts)
        runs: dict[str, list[dict[str, float]]] = {p: [] for p in paths}
        for _ in range(rounds):
            for path, spec in paths.items():
                # Every round writes the same vectors; the last one is kept for the comparisons below.
                runs[path].append(measure(spec, texts_file, threads, device, work / f"{name}-{path}.npy"))
        reference_name = next(iter(paths))
        reference = np.load(work / f"{name}-{reference_name}.npy")
        fp32 = np.load(work / f"{name}-nestvec onnx fp32.npy") if "nestvec onnx fp32" in paths else reference
        entry: dict = {"texts": len(texts), "gflop": flops / 1e9, "paths": {}}
        base = max(r["texts_per_s"] for r in runs[reference_name])
        print(f"{name} ({len(texts)} texts, {threads} threads, {device})")
        for path in paths:
            best = max(runs[path], key=lambda r: r["texts_per_s"])
            vectors = np.load(work / f"{name}-{path}.npy")
            to_ref, to_fp32 = cosines(vectors, reference), cosines(vectors, fp32)
            row = {
                **best,
                "all_texts_per_s": [r["texts_per_s"] for r in runs[path]],
                "speedup_vs_sentence_transformers": best["texts_per_s"] / base,
                "gflop_per_s": flops / 1e9 / best["seconds"],
                "cosine_to_st_mean": float(to_ref.mean()),
                "cosine_to_st_min": float(to_ref.min()),
                "cosine_to_fp32_mean": float(to_fp32.mean()),
                "cosine_to_fp32_min": float(to_fp32.min()),
            }
            entry["paths"][path] = row
            print(
                f"  {path:28s} {row['texts_per_s']:8.1f} texts/s  {row['speedup_vs_sentence_transformers']:5.2f}x  "
                f"{row['gflop_per_s']:6.1f} GFLOP/s  cos to ST mean {row['cosine_to_st_mean']:.6f} "
                f"min {row['cosine_to_st_min']:.6f}  RSS {row['peak_rss_mb']:5.0f} MB"
            )
        results[name] = entry
    return results


def gpu_quality() -> dict[str, float]:
    """STS-B test Spearman of the CUDA paths: fp16 must stay within 0.1 of fp32."""
    from nestvec.eval import Setting, evaluate_sts

    out = {c: evaluate_sts(STS, Setting.make(backend="torch", compute=c)).main for c in ("fp32", "fp16")}
    print(f"  CUDA STS-B test Spearman: fp32 {out['fp32']:.2f}, fp16 {out['fp16']:.2f}")
    return {"stsb_test_spearman_fp32": out["fp32"], "stsb_test_spearman_fp16": out["fp16"]}


def quality(paths: dict[str, Spec]) -> dict[str, dict[str, float]]:
    from nestvec.eval import Setting, evaluate_retrieval, evaluate_sts

    out: dict[str, dict[str, float]] = {}
    for path, (library, backend, compute, _, _) in paths.items():
        if library != "nestvec":
            continue
        setting = Setting.make(backend=backend, compute=compute)
        sts = evaluate_sts(STS, setting).main
        ndcg = evaluate_retrieval(MSMARCO, setting).main
        out[path] = {"stsb_test_spearman": sts, "msmarco5k_ndcg10": ndcg}
        print(f"  {path:28s} STS-B test Spearman {sts:6.2f}   msmarco-5k nDCG@10 {ndcg:6.2f}")
    return out


def cache_reindex(work: Path) -> dict[str, float]:
    """Build the demo collection twice through one embedding cache: cold, then warm."""
    from nestvec.encoders import EmbeddingCache, load_encoder
    from nestvec.io.ingest import build_collection
    from nestvec.io.readers import RecordReader

    cache = EmbeddingCache(work / "embedding-cache")
    seconds = {}
    for state in ("cold", "warm"):
        reader = RecordReader(PAPERS)
        start = time.perf_counter()
        build_collection(reader, work / f"demo-{state}", model=load_encoder("minilm", cache=cache), progress=False)
        seconds[state] = time.perf_counter() - start
    ratio = seconds["cold"] / seconds["warm"]
    print(f"demo re-index: cold {seconds['cold']:.2f}s, warm {seconds['warm']:.3f}s → {ratio:.0f}x")
    return {"cold_s": seconds["cold"], "warm_s": seconds["warm"], "speedup": ratio, "entries": cache.stats().entries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the paths this many times; best kept")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--devices", default="cpu,cuda", help="cpu, cuda or both; cuda is skipped where absent")
    parser.add_argument("--peers-python", help="interpreter with fastembed and infinity-emb installed")
    parser.add_argument("--only", help="comma-separated path names to run (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "encode.json")
    args = parser.parse_args()
    import torch

    devices = args.devices.split(",")
    work = Path(tempfile.mkdtemp(prefix="nestvec-bench-encode-"))
    report: dict = {}
    try:
        if "cuda" in devices and torch.cuda.is_available():
            report["gpu"] = speed(GPU_PATHS, args.threads, args.rounds, "cuda", work)
            report["gpu"]["device"] = torch.cuda.get_device_name()
            report["gpu"]["quality"] = gpu_quality()
        elif "cuda" in devices:
            report["gpu"] = "no CUDA device on this machine: GPU paths not measured"
        if "cpu" in devices:
            paths = dict(PATHS)
            if args.peers_python:
                PEERS.update({"fastembed": args.peers_python, "infinity": args.peers_python})
                peer_folders(work)
                paths.update(PEER_PATHS)
            if args.only:
                paths = {name: spec for name, spec in paths.items() if name in args.only.split(",")}
            report["cpu"] = speed(paths, args.threads, args.rounds, "cpu", work)
            if not args.skip_quality:
                report["quality"] = quality(PATHS)
            report["cache"] = cache_reindex(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["meta"] = {
        "threads": args.threads,
        "rounds": args.rounds,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_flags": cpu_flags(),
        "when": time.strftime("%F %T"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
