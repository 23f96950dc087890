"""The closed registry of model folder kinds: how `load_encoder` tells what a folder holds.

A folder nestvec wrote says what it is in config.json's `kind` (`nestvec.static`, ...), the same
name its encoder's identity carries; a sentence-transformers folder is recognised by its
modules.json (or a Hugging Face config.json, whose missing parts read_st_folder names). A folder that is none of these
gets an error listing every layout tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nestvec.encoders.base import Encoder
from nestvec.errors import ModelError
from nestvec.files import load_json


@dataclass(frozen=True)
class FolderKind:
    name: str
    layout: str  # what such a folder holds, for the error message
    old_names: tuple[str, ...] = ()  # config.json kinds earlier versions wrote


KINDS: dict[str, FolderKind] = {
    k.name: k
    for k in (
        FolderKind(
            "transformer",
            "a sentence-transformers folder (modules.json, config.json, model.safetensors, tokenizer.json, "
            "1_Pooling/config.json)",
        ),
        FolderKind(
            "decoder",
            "a decoder LLM: a .gguf file, or a causal-LM folder (config.json whose architectures end in "
            "ForCausalLM, model.safetensors, tokenizer.json)",
        ),
        FolderKind(
            "static",
            "a static model from `nestvec distill` (config.json of kind nestvec.static, tokenizer.json, "
            "embeddings.safetensors)",
            ("static-model",),
        ),
        FolderKind(
            "hashed",
            "a hash model from train_hashed (config.json of kind nestvec.hashed, table.safetensors)",
            ("hash-model",),
        ),
        FolderKind(
            "wordvectors",
            "word vectors from `nestvec vectors convert` (config.json of kind nestvec.wordvectors, raw arrays)",
            ("word-vectors",),
        ),
    )
}
_BY_CONFIG = {f"nestvec.{n}": k.name for k in KINDS.values() for n in (k.name, *k.old_names)}


def kind_of(folder: Path) -> str:
    """The registered kind of the model in `folder`, or a ModelError listing every layout tried."""
    if folder.is_file() or any(folder.glob("*.gguf")):
        return "decoder"  # decoder_source says what a wrong file is
    config: object = None
    path = folder / "config.json"
    if path.is_file():
        config = load_json(path, ModelError, then="; the model folder is corrupt.")
    kind = config.get("kind") if isinstance(config, dict) else None
    if isinstance(kind, str) and kind in _BY_CONFIG:
        return _BY_CONFIG[kind]
    if not (folder / "modules.json").is_file() and _causal(config):
        return "decoder"
    if (folder / "modules.json").is_file() or (isinstance(config, dict) and not str(kind or "").startswith("nestvec.")):
        return "transformer"  # read_st_folder names any part that is missing
    tried = "; ".join(f"{k.name}: {k.layout}" for k in KINDS.values())
    found = f"config.json of kind {kind!r}" if kind else "no config.json with a kind, and no modules.json"
    raise ModelError(f"{folder} is not a model folder nestvec knows ({found}). Layouts tried: {tried}.")


def _causal(config: object) -> bool:
    names = config.get("architectures") if isinstance(config, dict) else None
    return isinstance(names, list) and bool(names) and all(str(n).endswith("ForCausalLM") for n in names)


def loader(kind: str) -> Callable[[Path], Encoder]:
    """The encoder class for a folder kind other than transformer and decoder (which take backend options)."""
    if kind == "static":
        from nestvec.encoders.static import StaticEncoder

        return StaticEncoder
    if kind == "hashed":
        from nestvec.encoders.hashed import HashEncoder

        return HashEncoder
    if kind == "wordvectors":
        from nestvec.encoders.wordvectors import WordVectors

        return WordVectors
    raise ModelError(f"no plain loader for folder kind {kind!r}")
