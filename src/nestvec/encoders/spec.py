"""EncoderSpec: which model, and how it runs. Light on purpose: recipes and the CLI import it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nestvec.errors import InputError, ModelError
from nestvec.registry import unknown_name_message

DEFAULT_MODEL = "minilm"
# How a transformer model runs. "auto": ONNX Runtime on CPU when it is installed (faster, same
# fp32 vectors to ~1e-6), else torch; GPUs and half precision go through torch.
BACKENDS = ("auto", "torch", "onnx")
# The network's arithmetic. int8 runs on ONNX Runtime, bf16 on torch, fp16 on torch with CUDA.
COMPUTES = ("fp32", "int8", "bf16", "fp16")


@dataclass(frozen=True)
class EncoderSpec:
    """`model`: a registered name (minilm) or a model folder; `backend` and `compute` as above;
    `layers`: run only the first L transformer layers (None: all of them)."""

    model: str = DEFAULT_MODEL
    backend: str = "auto"
    compute: str = "fp32"
    layers: int | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ModelError("model must name a registered model or a model folder, got an empty string.")
        if self.backend not in BACKENDS:
            raise ModelError(unknown_name_message("backend", self.backend, list(BACKENDS)))
        if self.compute not in COMPUTES:
            raise InputError(unknown_name_message("compute", self.compute, list(COMPUTES)))
        layers = self.layers
        if layers is not None and (isinstance(layers, bool) or not isinstance(layers, int) or layers < 1):
            raise InputError(f"layers must be a positive integer or None, got {self.layers!r}.")

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        if self.layers is None:
            del found["layers"]  # recipes saved without it read the same, by older versions too
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderSpec:
        layers = data.get("layers")
        return cls(
            str(data.get("model", DEFAULT_MODEL)),
            str(data.get("backend", "auto")),
            str(data.get("compute", "fp32")),
            int(layers) if layers is not None else None,
        )
