"""A decoder's trunk as an ONNX graph, run by ONNX Runtime on a CPU; pooling stays in numpy.

The graph takes what DecoderEncoder builds (token ids, the padding mask, positions that count
real tokens only) and returns the states it pools, so every method but one gives the torch
vectors (tested within 1e-5). It is exported once per weights and layer cut with torch's
TorchScript exporter (dynamic batch and length) and cached as transformer graphs are
(`cached_graph`: built beside the cache entry, renamed, checked by sha256). Token Prepending
rewrites states between layers from Python hooks, which a traced graph does not keep, so
`prepend` runs on torch only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.errors import ModelError

GRAPH_FORMAT = 1
INPUTS = ("input_ids", "attention_mask", "position_ids")


def decoder_graph(trunk: Any, *, weights_sha256: str, layer: int | None, cache_dir: Path | None = None) -> Path:
    """The cached graph of `trunk` (a decoder model without its LM head, cut at `layer`)."""
    from nestvec.encoders.transformer.onnx_export import cached_graph

    name = f"decoder-{weights_sha256[:24]}-layer{layer or 'all'}-v{GRAPH_FORMAT}"
    record = {"kind": "decoder", "weights_sha256": weights_sha256, "layer": layer}
    return cached_graph(name, lambda path: _export(trunk, path), cache_dir=cache_dir, record=record)


class OnnxTrunk:
    """The exported trunk in an ONNX Runtime session: padded batch in, token states out."""

    def __init__(self, path: Path, *, threads: int | None) -> None:
        from nestvec.encoders.transformer.onnx_export import import_onnxruntime

        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, features: dict[str, Any]) -> np.ndarray:
        feed = {name: np.ascontiguousarray(features[name].numpy(), dtype=np.int64) for name in INPUTS}
        return np.asarray(self.session.run(["states"], feed)[0], dtype=np.float32)


def _wrapped(trunk: Any) -> Any:
    """The trunk as a module of the three inputs, returning the states the encoder pools."""
    import torch

    class Trunk(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = trunk

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any) -> Any:
            found = self.trunk(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               use_cache=False)  # fmt: skip
            return found.last_hidden_state

    return Trunk().eval()


def _export(trunk: Any, path: Path) -> None:
    import torch

    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 7, 8]])  # any shapes: the axes are declared dynamic
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    axes = {n: {0: "batch", 1: "tokens"} for n in (*INPUTS, "states")}
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            # The tracer warns about Python values it records as constants: the dummy batch's
            # shapes (declared dynamic) and masking branches not taken for these inputs.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _wrapped(trunk), (ids, mask, positions), str(path), dynamo=False, opset_version=18,
                input_names=list(INPUTS), output_names=["states"], dynamic_axes=axes,
            )  # fmt: skip
    except Exception as exc:  # the exporter raises many types; all mean the same to the user
        raise ModelError(f"Could not export the decoder model to ONNX ({type(exc).__name__}: {exc}).") from exc
