"""Export a sentence-transformers folder to ONNX once: the whole pipeline (network, pooling, Dense,
normalization) in one graph, fused for ONNX Runtime, optionally int8; cached by the weights' hash."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nestvec.encoders.transformer.folder import STFolder
from nestvec.errors import InputError, MissingExtraError, ModelError
from nestvec.files import hash_file
from nestvec.registry import unknown_name_message

if TYPE_CHECKING:
    from nestvec.encoders.transformer.torch_backend import TransformerEncoder

# Bump when the exported graph changes, so old cache entries are not reused.
EXPORT_FORMAT = 1
ONNX_COMPUTES = ("fp32", "int8")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def cache_root() -> Path:
    """$NESTVEC_CACHE_DIR, else $XDG_CACHE_HOME/nestvec, else ~/.cache/nestvec."""
    if os.environ.get("NESTVEC_CACHE_DIR"):
        return Path(os.environ["NESTVEC_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nestvec"


def onnx_file(folder: STFolder, compute: str, *, cache_dir: Path | None = None, layers: int | None = None) -> Path:
    """The cached graph for `folder` at `compute` (its first `layers` layers), exported (seconds,
    needs torch) when missing."""
    if compute not in ONNX_COMPUTES:
        raise InputError(unknown_name_message("onnx compute", compute, list(ONNX_COMPUTES)))
    ort = import_onnxruntime()
    key = json.dumps(
        [EXPORT_FORMAT, folder.weights_sha256(), folder.files_sha256, compute, ort.__version__, _pipeline(folder)]
        + ([layers] if layers is not None else [])  # keys of full graphs stay as they were
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    cut = "" if layers is None else f"L{layers}-"
    name = f"{folder.root.name}-{cut}{compute}-{digest}"
    return cached_graph(
        name,
        lambda graph: _make(folder, compute, graph, layers, cache_dir),
        cache_dir=cache_dir,
        record={"compute": compute, "source": str(folder.root), "layers": layers},
    )


def cached_graph(name: str, make: Callable[[Path], None], *, cache_dir: Path | None, record: dict[str, Any]) -> Path:
    """The ONNX graph cached under `name`, made by `make(path)` (seconds, needs torch) when missing
    or damaged; `record` is kept beside it."""
    root = cache_dir or cache_root()
    if _valid(root / "onnx" / name):  # a read-only cache filled beforehand is fine
        return root / "onnx" / name / "model.onnx"
    dest = _writable(root) / "onnx" / name
    if not _valid(dest):
        _build(dest, make, record)
    return dest / "model.onnx"


def _writable(root: Path) -> Path:
    """`root`, or a per-user temporary folder when `root` cannot be written (a read-only home)."""
    try:
        (root / "onnx").mkdir(parents=True, exist_ok=True)
        probe = root / "onnx" / f".probe-{uuid.uuid4().hex}"
        probe.touch()
        probe.unlink()
        return root
    except OSError:
        import tempfile

        fallback = Path(tempfile.gettempdir()) / f"nestvec-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        (fallback / "onnx").mkdir(parents=True, exist_ok=True)
        return fallback


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtraError("onnxruntime", "onnx", "The ONNX backend") from exc
    return onnxruntime


def _pipeline(folder: STFolder) -> dict[str, Any]:
    return {
        "pooling": list(folder.pooling_modes),
        "dense": [[s.out_features, s.activation] for s in folder.dense],
        "normalize": folder.normalize,
    }


def _valid(dest: Path) -> bool:
    """A cache entry counts only if complete and unchanged: a torn or edited file is rebuilt."""
    try:
        config = json.loads((dest / "config.json").read_text(encoding="utf-8"))
        return bool(config.get("sha256") == hash_file(dest / "model.onnx").hexdigest())
    except (OSError, ValueError):
        return False


def _build(dest: Path, make: Callable[[Path], None], record: dict[str, Any]) -> None:
    # Built beside the destination and renamed into place, so readers never see half a folder
    # and two processes exporting at once both end with one complete entry.
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        graph = tmp / "model.onnx"
        make(graph)
        config = {"format": EXPORT_FORMAT, **record, "sha256": hash_file(graph).hexdigest()}
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)  # an invalid entry (checked by the caller)
        os.rename(tmp, dest)
    except OSError:
        if not _valid(dest):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _make(folder: STFolder, compute: str, graph: Path, layers: int | None, cache_dir: Path | None) -> None:
    if compute == "int8":
        quantize(onnx_file(folder, "fp32", cache_dir=cache_dir, layers=layers), graph)
    else:
        _export(folder, graph.with_name("exported.onnx"), layers)
        _fuse(folder, graph.with_name("exported.onnx"), graph)


def _export(folder: STFolder, path: Path, layers: int | None) -> None:
    try:
        import torch

        from nestvec.encoders.transformer.torch_backend import TransformerEncoder
    except ImportError as exc:
        raise MissingExtraError("torch", "transformer", "Exporting a model to ONNX") from exc
    # Eager attention traces to the MatMul/Softmax pattern ONNX Runtime's fusions recognise.
    encoder = TransformerEncoder(folder, name=folder.root.name, device="cpu", attention="eager", layers=layers)
    batch = next(encoder.tokenizer.batches(["a b c", "a"], 2))  # any shapes: the axes are declared dynamic
    names = list(INPUTS if encoder.uses_token_types else INPUTS[:2])
    args = tuple(torch.from_numpy(getattr(batch, n)) for n in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            # The tracer warns about Python values it records as constants: shapes of the dummy
            # batch that the dynamic axes override, and masking branches not taken for these inputs.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _pipeline_module(encoder), args, str(path), dynamo=False, opset_version=17,
                input_names=names, output_names=["embedding"], dynamic_axes=axes,
            )  # fmt: skip
    except Exception as exc:  # the exporter raises many types; all mean the same to the user
        raise ModelError(f"Could not export {folder.root} to ONNX ({type(exc).__name__}: {exc}).") from exc


def _fuse(folder: STFolder, source: Path, dest: Path) -> None:
    """Fuse attention, LayerNorm and GELU into ONNX Runtime's kernels (BERT-style encoders)."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = folder.config()
    model = optimize_model(
        str(source),
        model_type="bert",
        num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=int(config.get("hidden_size", 0)),
        opt_level=0,
    )
    model.save_model_to_file(str(dest))


def quantize(source: Path, dest: Path) -> None:
    """Dynamic int8: weights per output channel (per-tensor loses too much on MiniLM's outliers)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It logs a generic "consider pre-processing" advice on the root logger at WARNING.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(source), str(dest), weight_type=QuantType.QInt8, per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fmt: skip
    finally:
        root.setLevel(level)


def _pipeline_module(encoder: TransformerEncoder) -> Any:
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = encoder.model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            vectors = encoder.pooled_tensors(*inputs)
            if encoder.folder.normalize:
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
            return vectors

    return Pipeline()
