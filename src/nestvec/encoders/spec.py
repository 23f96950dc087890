"""EncoderSpec: which model, and how it runs. Light on purpose: recipes and the CLI import it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from nestvec.errors import InputError, ModelError
from nestvec.registry import unknown_name_message

DEFAULT_MODEL = "minilm"
# How a transformer model runs. "auto": ONNX Runtime on CPU when it is installed (faster, same
# fp32 vectors to ~1e-6), else torch; GPUs and half precision go through torch.
BACKENDS = ("auto", "torch", "onnx")
# The network's arithmetic. int8 runs on ONNX Runtime, bf16 on torch, fp16 on torch with CUDA.
COMPUTES = ("fp32", "int8", "bf16", "fp16")
# How a decoder LLM's token states become one vector (nestvec.encoders.decoder.methods says each).
POOLINGS = ("mean", "last", "prompteol", "echo", "prepend")


@dataclass(frozen=True)
class EncoderSpec:
    """`model`: a registered name (minilm) or a model folder; `backend` and `compute` as above;
    `layers`: run only the first L transformer layers (None: all of them); `query_prompt` and
    `document_prompt`: text put before queries and documents (None: the model folder's own, if it
    declares any; "": none). A recipe bound to its model holds them resolved. `pooling`: for
    decoder LLMs, how token states become one vector (None: last-token)."""

    model: str = DEFAULT_MODEL
    backend: str = "auto"
    compute: str = "fp32"
    layers: int | None = None
    query_prompt: str | None = None
    document_prompt: str | None = None
    pooling: str | None = None

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
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise InputError(unknown_name_message("pooling", self.pooling, list(POOLINGS)))
        for name in ("query_prompt", "document_prompt"):
            prompt = getattr(self, name)
            if prompt is not None and not isinstance(prompt, str):
                raise InputError(f"{name} must be a string or None, got {prompt!r}.")

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        for name in ("layers", "pooling"):
            if found[name] is None:
                del found[name]  # recipes saved without it read the same, by older versions too
        for name in ("query_prompt", "document_prompt"):
            if found[name] == "":
                del found[name]  # as recipes from before prompts: none
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderSpec:
        layers = data.get("layers")
        return cls(
            str(data.get("model", DEFAULT_MODEL)),
            str(data.get("backend", "auto")),
            str(data.get("compute", "fp32")),
            int(layers) if layers is not None else None,
            # absent: saved with no prompt (and every recipe before prompts existed was built without)
            data.get("query_prompt", ""),
            data.get("document_prompt", ""),
            data.get("pooling"),
        )

    def prompt(self, side: str) -> str:
        """The prompt put before texts of `side` (query or document); "" when there is none."""
        return (self.query_prompt if side == "query" else self.document_prompt) or ""

    def resolved(self, declared: dict[str, str]) -> EncoderSpec:
        """Prompts left to the model (None) set to what its folder declares (`declared`), or none."""
        return replace(
            self,
            query_prompt=declared.get("query", "") if self.query_prompt is None else self.query_prompt,
            document_prompt=declared.get("document", "") if self.document_prompt is None else self.document_prompt,
        )
