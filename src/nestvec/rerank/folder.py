"""A sentence-transformers CrossEncoder folder, checked: a sequence-classification network with one
relevance label, its fast tokenizer and safetensors weights, and the activation its scores take."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from nestvec.errors import ModelError
from nestvec.files import hash_file

_ACTIVATIONS = {"torch.nn.modules.activation.Sigmoid": "sigmoid", "torch.nn.modules.linear.Identity": "identity"}
_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "config_sentence_transformers.json")


@dataclass(frozen=True)
class CrossEncoderFolder:
    root: Path
    max_length: int
    activation: str  # sigmoid (sentence-transformers' default for one label) or identity
    weight_files: tuple[Path, ...]

    @cached_property
    def weights_sha256(self) -> str:
        digest = hashlib.sha256()
        for path in self.weight_files:
            digest.update(path.name.encode())
            hash_file(path, digest)
        return digest.hexdigest()

    @cached_property
    def files_sha256(self) -> dict[str, str]:
        return {n: hash_file(self.root / n).hexdigest() for n in _FILES if (self.root / n).is_file()}


def read_cross_encoder(root: Path) -> CrossEncoderFolder:
    """Validate a CrossEncoder folder; errors say what is missing and what a reranker needs."""
    config = _json(root / "config.json", root)
    found = config.get("architectures")
    architectures = [str(a) for a in found] if isinstance(found, list) else []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        raise ModelError(
            f"{root} is not a cross-encoder: its config.json names {architectures or 'no architecture'}, "
            "not a *ForSequenceClassification network. A reranker is a sentence-transformers CrossEncoder "
            "folder (an embedding model scores texts one by one: use it with search instead)."
        )
    id2label = config.get("id2label") or {"0": "LABEL_0"}
    labels = len(id2label) if isinstance(id2label, dict) else 0
    if labels != 1:
        raise ModelError(
            f"{root} scores {labels} labels per pair; a reranker needs one relevance score (num_labels=1)."
        )
    if not (root / "tokenizer.json").is_file():
        raise ModelError(f"Cross-encoder folder {root} is missing tokenizer.json (a fast tokenizer file).")
    weights = tuple(sorted(root.glob("*.safetensors")))
    if not weights:
        raise ModelError(f"Cross-encoder folder {root} has no weights: expected model.safetensors (no pickle files).")
    st = (
        _json(root / "config_sentence_transformers.json", root)
        if (root / "config_sentence_transformers.json").is_file()
        else {}
    )
    name = str(st.get("activation_fn") or "torch.nn.modules.activation.Sigmoid")
    if name not in _ACTIVATIONS:
        raise ModelError(f"{root}: activation '{name}' is not supported; supported: {', '.join(_ACTIVATIONS)}.")
    return CrossEncoderFolder(root, _max_length(root, config), _ACTIVATIONS[name], weights)


def _max_length(root: Path, config: dict[str, object]) -> int:
    positions = int(str(config.get("max_position_embeddings", 512)))
    path = root / "tokenizer_config.json"
    limit = _json(path, root).get("model_max_length") if path.is_file() else None
    if isinstance(limit, (int, float)) and 0 < limit < 1_000_000:
        return min(int(limit), positions)
    return positions


def _json(path: Path, root: Path) -> dict[str, object]:
    if not path.is_file():
        raise ModelError(f"Cross-encoder folder {root} is missing {path.name}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc}); the model folder is corrupt.") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} should hold a JSON object, found {type(data).__name__}.")
    return data
