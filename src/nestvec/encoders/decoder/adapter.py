"""A LoRA adapter folder over a decoder model, as `nestvec train` writes it.

The folder holds config.json (kind `nestvec.decoder`: the base model by name or folder, the
sha256 of the base weights it was trained over, the pooling and layer it was trained for, the
training record) and peft's own adapter_config.json and adapter_model.safetensors. The base is
never copied: `load_encoder(folder)` loads the base as usual and merges the adapter into it, and a
base whose weights changed since is refused rather than silently mixed with the wrong adapter.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nestvec.errors import ModelError
from nestvec.files import load_json, write_folder_whole

ADAPTER_KIND = "nestvec.decoder"
FORMAT_VERSION = 1
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass(frozen=True)
class AdapterRecord:
    base: str  # a registered name (smollm2) or a folder / .gguf path
    base_weights_sha256: str
    pooling: str
    layer: int | None
    training: dict[str, Any] = field(default_factory=dict)


def is_adapter(folder: Path) -> bool:
    path = folder / "config.json"
    if not folder.is_dir() or not path.is_file():
        return False
    config = load_json(path, ModelError, then="; the model folder is corrupt.")
    return isinstance(config, dict) and config.get("kind") == ADAPTER_KIND


def read_adapter(folder: Path) -> AdapterRecord:
    """The record of an adapter folder, or a ModelError naming what is missing or malformed."""
    config = load_json(folder / "config.json", ModelError, then="; the adapter folder is corrupt.")
    missing = [name for name in PEFT_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelError(
            f"{folder} is a decoder adapter folder without {', '.join(missing)}; it was not written whole. "
            "Train it again (`nestvec train ... --base smollm2`) or restore the folder."
        )
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{folder}/config.json has format_version {version!r}; this nestvec reads version {FORMAT_VERSION}."
        )
    try:
        return AdapterRecord(
            base=str(config["base"]),
            base_weights_sha256=str(config["base_weights_sha256"]),
            pooling=str(config["pooling"]),
            layer=None if config.get("layer") is None else int(config["layer"]),
            training=dict(config.get("training") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{folder}/config.json lacks or garbles {exc}; the adapter folder is corrupt.") from None


def write_adapter(target: Path, peft_model: Any, record: AdapterRecord) -> None:
    """peft's files and the record, written beside `target` and renamed: whole or absent."""
    config = {"kind": ADAPTER_KIND, "format_version": FORMAT_VERSION, **asdict(record)}

    def write(folder: Path) -> None:
        peft_model.save_pretrained(str(folder))
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    write_folder_whole(target, write)


def merged(trunk: Any, folder: Path) -> Any:
    """`trunk` with the adapter in `folder` merged into its weights (no LoRA cost at encode time)."""
    try:
        from peft import PeftModel
    except ImportError as exc:
        from nestvec.errors import MissingExtraError

        raise MissingExtraError("peft", "decoder", "A decoder adapter folder") from exc
    return PeftModel.from_pretrained(trunk, str(folder)).merge_and_unload()
