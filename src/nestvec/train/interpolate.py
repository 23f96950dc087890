"""Weight-space interpolation of a fine-tuned model with its base (WiSE-FT: Wortsman et al., 2022,
"Robust fine-tuning of zero-shot models"). Fine-tuning on one task (STS) moves the weights away
from what served other tasks (retrieval); a point on the line between the two keeps much of the
gain and much of what the base could do. The weight is chosen on dev sets, never on a test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nestvec.errors import InputError


def mix_weights(model: Any, base_folder: str | Path, *, base_weight: float) -> Any:
    """`model` (a SentenceTransformer) with every floating weight set to (1-w)·tuned + w·base, in place."""
    from sentence_transformers import SentenceTransformer

    if not 0.0 <= base_weight <= 1.0:
        raise InputError(f"The base weight is a fraction in [0, 1]; got {base_weight}.")
    base = SentenceTransformer(str(base_folder), device="cpu").state_dict()
    tuned = model.state_dict()
    if base.keys() != tuned.keys() or any(base[k].shape != tuned[k].shape for k in tuned):
        raise InputError(f"{base_folder} is not the architecture that was fine-tuned; weights cannot be mixed.")
    mixed = {
        k: (1 - base_weight) * v + base_weight * base[k].to(v.device, v.dtype) if v.is_floating_point() else v
        for k, v in tuned.items()
    }
    model.load_state_dict(mixed)
    return model
