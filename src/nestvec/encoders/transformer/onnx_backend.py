"""Sentence-transformers models run by ONNX Runtime: fused fp32 graph, or int8 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nestvec.encoders.transformer.folder import STFolder
from nestvec.encoders.transformer.onnx_export import import_onnxruntime, onnx_file
from nestvec.encoders.transformer.sentence import SentenceEncoder
from nestvec.encoders.transformer.tokenize import Batch
from nestvec.errors import InputError, ModelError


class OnnxEncoder(SentenceEncoder):
    """The same pipeline as TransformerEncoder, exported once to a cached ONNX graph (with
    `layers`, a graph of the cut model: the layers above L are not in it at all).

    fp32 agrees with the torch backend to ~1e-6 (same identity); int8 quantizes the weights per
    output channel and the activations per batch (its own identity: its vectors differ).
    `threads` sets this session's intra-op threads only; other encoders are unaffected.
    """

    # ONNX Runtime's idle threads spin before they sleep: the fastest choice for a process that
    # does nothing but encode, and a waste where the cores are shared with other work between
    # batches. The server's model process turns it off (measured: 10.8 against 6.9 ms of CPU per
    # search query at 8 clients, docs/benchmarks.md "Serving searches").
    spin_wait = True

    def __init__(
        self,
        folder: STFolder,
        *,
        name: str,
        threads: int | None = None,
        compute: str = "fp32",
        cache_dir: Path | None = None,
        layers: int | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise InputError(f"threads must be ≥ 1, got {threads}.")
        super().__init__(folder, name=name, layers=layers)
        ort = import_onnxruntime()
        self.path = onnx_file(folder, compute, cache_dir=cache_dir, layers=self.layers)
        self.compute = compute
        self.threads = threads
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        if not self.spin_wait:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types without a common base
            raise ModelError(f"ONNX Runtime could not load {self.path}: {exc}") from exc
        self._inputs = [i.name for i in self.session.get_inputs()]

    def _embed(self, batch: Batch) -> np.ndarray:
        feed = {name: getattr(batch, name) for name in self._inputs}
        (vectors,) = self.session.run(["embedding"], feed)
        return np.asarray(vectors, dtype=np.float32)
