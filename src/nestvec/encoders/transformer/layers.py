"""Running only the first L layers of a transformer: the shallow models 2D Matryoshka and Starbucks
training make good. The cut model is the trained one with its upper layers dropped, its output the
hidden state after layer L, pooled as the full model pools its last layer (as sentence-transformers'
AdaptiveLayerLoss and Matryoshka2dLoss train it: their layer-L embedding is exactly this)."""

from __future__ import annotations

from typing import Any

from nestvec.errors import InputError, ModelError

# Where architectures keep their layer list: BERT/RoBERTa/MiniLM, DistilBERT, decoder LLMs, GPT-2.
_LAYER_LISTS = ("encoder.layer", "transformer.layer", "layers", "h", "encoder.layers")


def check_layers(layers: int | None, total: int) -> int | None:
    """`layers` normalized: None (or the full count) means every layer."""
    if layers is None or layers == total:
        return None
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= total:
        raise InputError(f"layers must be an integer from 1 to {total} (this model's layers), got {layers!r}.")
    return layers


def cut_layers(model: Any, layers: int) -> Any:
    """`model` (a transformers model) keeping its first `layers` layers, in place."""
    for path in _LAYER_LISTS:
        owner, name = _resolve(model, path)
        if owner is not None:
            setattr(owner, name, getattr(owner, name)[:layers])
            model.config.num_hidden_layers = layers
            return model
    raise ModelError(
        f"Cannot run a {type(model).__name__} with fewer layers: no layer list found (looked for "
        f"{', '.join(_LAYER_LISTS)}). Leave layers unset for this model."
    )


def _resolve(model: Any, path: str) -> tuple[Any, str]:
    *parents, name = path.split(".")
    owner = model
    for part in parents:
        owner = getattr(owner, part, None)
        if owner is None:
            return None, name
    import torch

    return (owner, name) if isinstance(getattr(owner, name, None), torch.nn.ModuleList) else (None, name)
