"""Reranker: a cross-encoder that reads a query and a text together and scores their relevance.

Slower than comparing vectors (one network pass per pair) and more accurate, so it re-scores the
few candidates a search found. Runs on torch (transformers) or on ONNX Runtime (the network
exported once and cached as for encoders; fp32 agrees with torch to ~1e-5).
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.errors import InputError, MissingExtraError, ModelError
from nestvec.registry import unknown_name_message
from nestvec.rerank.folder import CrossEncoderFolder, read_cross_encoder

BACKENDS = ("auto", "torch", "onnx")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Ranked:
    """One text of a rerank: its position in the input, its score, and the text when asked for."""

    index: int
    score: float
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "score": self.score, **({"text": self.text} if self.text is not None else {})}


class Reranker:
    def __init__(self, folder: CrossEncoderFolder, *, name: str, backend: str = "auto", threads: int | None = None):
        from tokenizers import Tokenizer

        if backend not in BACKENDS:
            raise InputError(unknown_name_message("reranker backend", backend, list(BACKENDS)))
        self.folder, self.name, self.source = folder, name, str(folder.root)
        self.max_tokens = folder.max_length
        self.tokenizer = Tokenizer.from_file(str(folder.root / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens, strategy="longest_first")
        self.backend = _choose(backend)
        self._run = _OnnxRun(folder, threads) if self.backend == "onnx" else _TorchRun(folder, threads)

    @property
    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "weights_sha256": self.folder.weights_sha256, "files": self.folder.files_sha256}

    def score(self, query: str, texts: Sequence[str], *, batch_size: int = 32, raw: bool = False) -> np.ndarray:
        """Relevance of each text to `query`, in input order (sigmoid of the logit unless `raw`)."""
        _check(query, texts)
        logits = np.zeros(len(texts), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # like lengths share a batch: less padding
        for start in range(0, len(order), batch_size):
            part = order[start : start + batch_size]
            logits[part] = self._run(self._batch(query, [texts[i] for i in part]))
        if raw or self.folder.activation == "identity":
            return logits
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)

    def rank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        top_k: int | None = None,
        raw: bool = False,
        return_text: bool = False,
    ) -> list[Ranked]:
        """The texts best first (ties in input order), the first `top_k` of them."""
        scores = self.score(query, texts, raw=raw)
        order = sorted(range(len(texts)), key=lambda i: (-float(scores[i]), i))[:top_k]
        return [Ranked(i, float(scores[i]), texts[i] if return_text else None) for i in order]

    def pair_tokens(self, query: str, texts: Sequence[str]) -> list[int]:
        """Tokens of each (query, text) pair before truncation, special tokens included."""
        return [len(e.ids) for e in self._counting.encode_batch([(query, t) for t in texts])]

    @functools.cached_property
    def _counting(self) -> Any:
        from tokenizers import Tokenizer

        counting = Tokenizer.from_str(self.tokenizer.to_str())
        counting.no_truncation()
        return counting

    def _batch(self, query: str, texts: list[str]) -> dict[str, np.ndarray]:
        encoded = self.tokenizer.encode_batch([(query, t) for t in texts])
        width = max(len(e.ids) for e in encoded)

        def column(name: str) -> np.ndarray:
            rows = [getattr(e, name) for e in encoded]
            return np.array([r + [0] * (width - len(r)) for r in rows], dtype=np.int64)

        return {
            "input_ids": column("ids"),
            "attention_mask": column("attention_mask"),
            "token_type_ids": column("type_ids"),
        }


def _check(query: str, texts: Sequence[str]) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InputError("The query is empty; give the text to rank against.")
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InputError("texts must be a list of strings (a lone string would be ranked character by character).")


def _choose(backend: str) -> str:
    if backend != "auto":
        return backend
    import importlib.util

    return "onnx" if importlib.util.find_spec("onnxruntime") is not None else "torch"


class _TorchRun:
    def __init__(self, folder: CrossEncoderFolder, threads: int | None) -> None:
        try:
            import torch
            from transformers import AutoModelForSequenceClassification
        except ImportError as exc:
            raise MissingExtraError("transformers", "transformer", "A reranker on torch") from exc
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(str(folder.root), use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"transformers could not load the cross-encoder {folder.root}: {exc}") from exc
        self.model.eval()
        self._types = getattr(self.model.config, "type_vocab_size", 0) > 0

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        names = _INPUTS if self._types else _INPUTS[:2]
        with torch.inference_mode():
            logits = self.model(**{n: torch.from_numpy(batch[n]) for n in names}).logits
        return logits[:, 0].float().numpy()


class _OnnxRun:
    def __init__(self, folder: CrossEncoderFolder, threads: int | None) -> None:
        from nestvec.encoders.transformer.onnx_export import cached_graph, import_onnxruntime

        ort = import_onnxruntime()
        key = json.dumps([folder.weights_sha256, folder.files_sha256, ort.__version__])
        name = f"rerank-{folder.root.name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"
        path = cached_graph(
            name, lambda graph: _export(folder, graph), cache_dir=None, record={"source": str(folder.root)}
        )
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's exceptions share no base class
            raise ModelError(f"ONNX Runtime could not load {path}: {exc}") from exc
        self._inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        (logits,) = self.session.run(["logits"], {n: batch[n] for n in self._inputs})
        return np.asarray(logits, dtype=np.float32)[:, 0]


def _export(folder: CrossEncoderFolder, graph: Path) -> None:
    import warnings

    import torch

    run = _TorchRun(folder, None)
    names = list(_INPUTS if run._types else _INPUTS[:2])
    dummy = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"logits": {0: "batch"}}

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = run.model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).logits

    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on constants the dynamic axes override
            torch.onnx.export(
                Logits(), dummy, str(graph), dynamo=False, opset_version=17, input_names=names,
                output_names=["logits"], dynamic_axes=axes,
            )  # fmt: skip
    except Exception as exc:  # the exporter raises many types; all mean the same to the user
        raise ModelError(f"Could not export {folder.root} to ONNX ({type(exc).__name__}: {exc}).") from exc


_loaded: dict[tuple[str, str, int | None], Reranker] = {}
_lock = threading.Lock()


def load_reranker(name_or_path: str | Path, *, backend: str = "auto", threads: int | None = None) -> Reranker:
    """A cross-encoder by folder or Hugging Face id (local cache only), loaded once per process."""
    from nestvec.encoders.loading import resolve_model

    display, folder = resolve_model(name_or_path)
    key = (str(folder), backend, threads)
    with _lock:
        if key not in _loaded:
            _loaded[key] = Reranker(read_cross_encoder(folder), name=display, backend=backend, threads=threads)
        return _loaded[key]
