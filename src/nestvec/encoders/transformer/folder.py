"""Reads and validates a sentence-transformers model folder without importing torch."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nestvec.encoders.prompts import folder_prompts
from nestvec.errors import ModelError
from nestvec.files import hash_file, load_json
from nestvec.registry import unknown_name_message

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len", "weightedmean", "lasttoken")
# sentence-transformers concatenates enabled modes in this order.
_POOLING_KEYS = {
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean": "pooling_mode_mean_tokens",
    "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}
_KNOWN_MODULES = ("Transformer", "Pooling", "Dense", "Normalize")
_NEW_POOLING_NAMES = {"mean_sqrt_len_tokens": "mean_sqrt_len"}
_DENSE_ACTIVATIONS = ("torch.nn.modules.linear.Identity", "torch.nn.modules.activation.Tanh")
# Files besides the weights whose content changes the vectors: the pipeline, the network's config
# and the tokenizer. Their hashes are part of the identity, so a collection notices a changed one.
VECTOR_FILES = frozenset(
    {
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
    }
)
_PICKLE_WEIGHTS = ("pytorch_model.bin", "model.pt", "model.pth", "tf_model.h5", "flax_model.msgpack")


@dataclass(frozen=True)
class DenseSpec:
    path: Path
    in_features: int
    out_features: int
    bias: bool
    activation: str


@dataclass(frozen=True)
class STFolder:
    """Everything needed to rebuild a sentence-transformers pipeline from its folder."""

    root: Path
    transformer_dir: Path
    max_seq_length: int
    do_lower_case: bool
    pooling_modes: tuple[str, ...]
    dense: tuple[DenseSpec, ...]
    normalize: bool
    weight_files: tuple[Path, ...]
    prompts: dict[str, str] = field(default_factory=dict)  # query/document prompts it declares

    def config(self) -> dict[str, Any]:
        return _read_json(self.transformer_dir / "config.json")

    def weights_sha256(self) -> str:
        """Content hash of every weight file, so a collection notices a changed model."""
        return self._weights_sha256

    @cached_property
    def _weights_sha256(self) -> str:
        # Computed once per folder object: the recipe identity and the ONNX cache key both need it.
        digest = hashlib.sha256()
        for path in self.weight_files:
            digest.update(path.relative_to(self.root).as_posix().encode())
            hash_file(path, digest)
        return digest.hexdigest()

    @cached_property
    def files_sha256(self) -> dict[str, str]:
        """sha256 of each non-weight file that changes the vectors, by path inside the folder."""
        # Hidden parts are judged inside the folder: models often live under ~/.cache.
        inside = sorted(p.relative_to(self.root) for p in self.root.rglob("*") if p.name in VECTOR_FILES)
        found = [p for p in inside if not any(part.startswith(".") for part in p.parts) and (self.root / p).is_file()]
        return {p.as_posix(): hash_file(self.root / p).hexdigest() for p in found}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"Model folder {path.parent} is missing {path.name}.")
    data = load_json(path, ModelError, then="; the model folder is corrupt.")
    if not isinstance(data, (dict, list)):
        raise ModelError(f"{path} should hold a JSON object, found {type(data).__name__}.")
    return data  # type: ignore[return-value]


def _safetensors_in(folder: Path, what: str) -> tuple[Path, ...]:
    files = tuple(sorted(folder.glob("*.safetensors")))
    if files:
        return files
    pickled = [name for name in _PICKLE_WEIGHTS if (folder / name).exists()]
    if pickled:
        raise ModelError(
            f"{what} {folder} holds only pickle weights ({', '.join(pickled)}); nestvec loads "
            "safetensors only, because pickle files can run code. Convert them once with "
            "transformers: AutoModel.from_pretrained(path).save_pretrained(path, safe_serialization=True)."
        )
    raise ModelError(f"{what} {folder} has no weights: expected model.safetensors.")


def _pooling_modes(folder: Path) -> tuple[str, ...]:
    cfg = _read_json(folder / "config.json")
    if "pooling_mode" in cfg:  # sentence-transformers 6: "mean", or a list concatenated in its order
        named = cfg["pooling_mode"] if isinstance(cfg["pooling_mode"], list) else [cfg["pooling_mode"]]
        modes = tuple(_NEW_POOLING_NAMES.get(str(m), str(m)) for m in named)
        unknown = [m for m in modes if m not in POOLING_MODES]
        if unknown:
            raise ModelError(
                f"{folder}/config.json: " + unknown_name_message("pooling mode", unknown[0], list(POOLING_MODES))
            )
        return modes
    modes = tuple(mode for mode in POOLING_MODES if cfg.get(_POOLING_KEYS[mode]))
    if not modes:
        raise ModelError(f"{folder}/config.json enables no pooling mode; expected one of {POOLING_MODES}.")
    return modes


def _dense(folder: Path) -> DenseSpec:
    cfg = _read_json(folder / "config.json")
    activation = str(cfg.get("activation_function", "torch.nn.modules.linear.Identity"))
    if activation not in _DENSE_ACTIVATIONS:
        raise ModelError(
            f"{folder}/config.json: activation '{activation}' is not supported; "
            f"supported: {', '.join(_DENSE_ACTIVATIONS)}."
        )
    _safetensors_in(folder, "Dense module folder")
    return DenseSpec(folder, int(cfg["in_features"]), int(cfg["out_features"]), bool(cfg.get("bias", True)), activation)


def _tokenizer_limit(folder: Path) -> int | None:
    """sentence-transformers 6 keeps the length limit in the tokenizer's config, not its own."""
    path = folder / "tokenizer_config.json"
    limit = _read_json(path).get("model_max_length") if path.is_file() else None
    return int(limit) if isinstance(limit, (int, float)) and 0 < limit < 1_000_000 else None


def _positions(folder: Path) -> int:
    return int(_read_json(folder / "config.json").get("max_position_embeddings", 512))


def _module_kind(type_name: str) -> str:
    """Transformer, Pooling… from sentence-transformers' class path: `sentence_transformers.models.X`
    before 6.0, `sentence_transformers.<package>.modules.<file>.X` since."""
    if type_name.startswith("sentence_transformers."):
        return type_name.rsplit(".", 1)[-1]
    return type_name


def read_st_folder(path: str | Path) -> STFolder:
    """Validate a sentence-transformers folder; errors name the path and what is missing."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ModelError(f"Model folder {root} does not exist (or is not a folder).")
    modules = _read_json(root / "modules.json")
    if not isinstance(modules, list) or not modules:
        raise ModelError(f"{root}/modules.json should list the model's modules, found {modules!r}.")
    transformer_dir: Path | None = None
    pooling: tuple[str, ...] = ()
    dense: list[DenseSpec] = []
    normalize = False
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = _module_kind(str(module.get("type", "")))
        folder = root / str(module.get("path", ""))
        if kind == "Transformer":
            transformer_dir = folder
        elif kind == "Pooling":
            pooling = _pooling_modes(folder)
        elif kind == "Dense":
            dense.append(_dense(folder))
        elif kind == "Normalize":
            normalize = True
        else:
            raise ModelError(f"{root}/modules.json: " + unknown_name_message("module type", kind, list(_KNOWN_MODULES)))
    if transformer_dir is None or not pooling:
        raise ModelError(f"{root}/modules.json must name a Transformer and a Pooling module.")
    _read_json(transformer_dir / "config.json")
    if not (transformer_dir / "tokenizer.json").is_file():
        raise ModelError(f"Model folder {transformer_dir} is missing tokenizer.json (a fast tokenizer file).")
    weights = _safetensors_in(transformer_dir, "Model folder")
    st_cfg_path = transformer_dir / "sentence_bert_config.json"
    st_cfg = _read_json(st_cfg_path) if st_cfg_path.exists() else {}
    max_len = int(st_cfg.get("max_seq_length") or _tokenizer_limit(transformer_dir) or _positions(transformer_dir))
    dense_weights = tuple(f for spec in dense for f in sorted(spec.path.glob("*.safetensors")))
    return STFolder(
        root=root,
        transformer_dir=transformer_dir,
        max_seq_length=max_len,
        do_lower_case=bool(st_cfg.get("do_lower_case", False)),
        pooling_modes=pooling,
        dense=tuple(dense),
        normalize=normalize,
        weight_files=weights + dense_weights,
        prompts=folder_prompts(root),
    )
