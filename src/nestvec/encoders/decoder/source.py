"""Where a decoder model's weights come from: a causal-LM folder, or a GGUF file made into one.

A GGUF file (llama.cpp's format, quantized) is dequantized by transformers' GGUF loader into a
float model once, and that model is kept in nestvec's cache as a plain folder (config.json,
model.safetensors, tokenizer.json) named by the file's sha256, so later loads take a second,
not the minute the conversion takes, and a changed file is converted again, never mistaken
for the old one. The model's identity is the GGUF file's sha256, not the converted folder's.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from nestvec.encoders.decoder.adapter import is_adapter, read_adapter
from nestvec.errors import MissingExtraError, ModelError
from nestvec.files import hash_file

# Architectures whose decoder layers sit in `model.layers` and take position_ids (the layer cut,
# Token Prepending's hooks and padding-free positions rely on both).
ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "olmo", "granite", "smollm3")
# Bump when the converted folder's layout changes, so old cache entries are made again.
CONVERT_FORMAT = 1


@dataclass(frozen=True)
class DecoderSource:
    """A float causal-LM folder and what identifies its weights."""

    folder: Path  # config.json, *.safetensors, tokenizer.json
    weights_sha256: str  # with an adapter: of the base's weights and the adapter's together
    origin: str  # the folder or GGUF file the user named
    adapter: Path | None = None  # a LoRA adapter folder merged over the base (adapter.py)
    pooling: str | None = None  # what the adapter was trained for: the defaults when loading it
    layer: int | None = None


def decoder_source(path: Path, *, cache_dir: Path | None = None) -> DecoderSource:
    """The folder to load for `path`: itself (a causal-LM folder) or the cached conversion of a
    GGUF file (a .gguf path, or a folder holding exactly one), or the base of an adapter folder."""
    if is_adapter(path):
        return _adapter_source(path, cache_dir)
    gguf = _gguf_in(path)
    if gguf is not None:
        digest = hash_file(gguf).hexdigest()
        return DecoderSource(_converted(gguf, digest, cache_dir), digest, str(gguf))
    check_folder(path)
    weights = sorted(path.glob("*.safetensors"))
    digest = hash_file(weights[0]).hexdigest() if len(weights) == 1 else _joined(weights)
    return DecoderSource(path, digest, str(path))


def _adapter_source(path: Path, cache_dir: Path | None) -> DecoderSource:
    import hashlib

    from nestvec.encoders.loading import resolve_model

    record = read_adapter(path)
    base = decoder_source(resolve_model(record.base)[1], cache_dir=cache_dir)
    if base.weights_sha256 != record.base_weights_sha256:
        raise ModelError(
            f"The adapter in {path} was trained over '{record.base}' with weights sha256 "
            f"{record.base_weights_sha256[:16]}…, but '{record.base}' here has {base.weights_sha256[:16]}…: "
            "an adapter only fits the weights it was trained on. Restore that base or train the adapter again."
        )
    digest = hashlib.sha256(base.weights_sha256.encode())
    hash_file(path / "adapter_model.safetensors", digest)
    return DecoderSource(base.folder, digest.hexdigest(), str(path), path, record.pooling, record.layer)


def check_folder(folder: Path) -> None:
    """A ModelError naming what a causal-LM folder lacks or holds that nestvec cannot run."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{folder} has no config.json; a decoder model folder holds config.json, "
                         "model.safetensors and tokenizer.json (save_pretrained writes them).")  # fmt: skip
    config = json.loads(config_path.read_text(encoding="utf-8"))
    check_architecture(str(config.get("model_type", "")), where=str(folder))
    if not (folder / "tokenizer.json").is_file():
        raise ModelError(
            f"{folder} has no tokenizer.json, so its texts cannot be tokenized. Save the model's tokenizer "
            "beside it (`AutoTokenizer.from_pretrained(...).save_pretrained(folder)` writes tokenizer.json)."
        )
    if not any(folder.glob("*.safetensors")):
        raise ModelError(
            f"{folder} has no .safetensors weights. nestvec loads safetensors only (pickle files can run "
            "code); convert with `model.save_pretrained(folder, safe_serialization=True)`."
        )


def check_architecture(model_type: str, *, where: str) -> None:
    if model_type not in ARCHITECTURES:
        raise ModelError(
            f"{where} holds a {model_type or 'model of no stated'} architecture; the decoder encoder runs "
            f"{', '.join(ARCHITECTURES)} (decoder layers in model.layers, rotary positions)."
        )


def _gguf_in(path: Path) -> Path | None:
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path} is a file but not a .gguf one; pass a model folder or a GGUF file.")
        return path
    found = sorted(path.glob("*.gguf")) if path.is_dir() else []
    if len(found) > 1:
        raise ModelError(f"{path} holds {len(found)} GGUF files ({', '.join(p.name for p in found)}); pass one.")
    return found[0] if found else None


def _joined(weights: list[Path]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in weights:
        hash_file(path, digest)
    return digest.hexdigest()


def _converted(gguf: Path, digest: str, cache_dir: Path | None) -> Path:
    from nestvec.encoders.transformer.onnx_export import cache_root

    dest = (cache_dir or cache_root()) / "decoder" / f"{gguf.stem}-{digest[:20]}-v{CONVERT_FORMAT}"
    if (dest / "converted.json").is_file():
        return dest
    _check_gguf_architecture(gguf)
    staging = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}")
    try:
        _convert(gguf, staging)
        (staging / "converted.json").write_text(json.dumps({"gguf": str(gguf), "sha256": digest}), encoding="utf-8")
        os.replace(staging, dest)  # whole or not at all; a second process converting at once loses the race
    except OSError:
        if not (dest / "converted.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _check_gguf_architecture(gguf: Path) -> None:
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise MissingExtraError("gguf", "decoder", "Loading a GGUF file") from exc
    try:
        reader = GGUFReader(str(gguf))
        field = reader.fields["general.architecture"]
        arch = bytes(field.parts[field.data[0]]).decode()
    except Exception as exc:  # a truncated or foreign file: gguf raises bare ValueErrors and KeyErrors
        raise ModelError(f"{gguf} is not a readable GGUF file ({type(exc).__name__}: {exc}).") from exc
    check_architecture(arch, where=str(gguf))


def _convert(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    from safetensors.torch import save_file

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
    # save_pretrained refuses a model loaded from GGUF ("quantized, not serializable"), though its
    # weights are plain floats by now: write them directly, the tied LM head once (as its input
    # embedding; from_pretrained ties it again).
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not (tied and k == "lm_head.weight")}
    out.mkdir(parents=True)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
