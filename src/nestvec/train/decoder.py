"""LoRA fine-tuning of a decoder LLM encoder with sentence-transformers' trainer.

The DecoderEncoder's own inputs (templates cut into pieces, positions that ignore padding, the
pooled span per row) and pooling run inside a sentence-transformers input module, so the
trainer, its losses, checkpoints, resume and evaluators work as for any encoder, and the vectors
trained are the ones `load_encoder` gives afterwards. Only LoRA's low-rank matrices train (peft;
Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models"), on every projection of
the attention and MLP blocks; the result is an adapter folder (encoders/decoder/adapter.py) that
loads over the unchanged base.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentence_transformers.base.modules.input_module import InputModule

from nestvec.encoders.decoder.adapter import AdapterRecord, write_adapter
from nestvec.encoders.decoder.methods import DEFAULT_METHOD
from nestvec.encoders.decoder.model import DecoderEncoder
from nestvec.encoders.decoder.source import decoder_source

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_DROPOUT = 0.05


class DecoderModule(InputModule):  # type: ignore[misc]
    """A decoder model with a LoRA adapter as sentence-transformers' one module; it pools itself."""

    config_file_name = "nestvec_decoder_module.json"
    config_keys = ["base", "pooling", "layer", "rank"]  # noqa: RUF012 (sentence-transformers' class attribute)

    def __init__(
        self,
        base: str,
        pooling: str = DEFAULT_METHOD,
        layer: int | None = None,
        rank: int = 16,
        *,
        adapter: str | None = None,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        from peft import LoraConfig, PeftModel, get_peft_model

        from nestvec.encoders.loading import resolve_model

        display, folder = resolve_model(base)
        self.base, self.pooling, self.rank = base, pooling, rank
        self.encoder = DecoderEncoder(decoder_source(folder), name=display, pooling=pooling, layer=layer, device=device)
        self.layer = self.encoder.layer  # None when it is the last: the adapter records it so
        if adapter is not None:  # a checkpoint being resumed
            trunk = PeftModel.from_pretrained(self.encoder.model, adapter, is_trainable=True)
        else:
            lora = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=LORA_DROPOUT, target_modules=LORA_TARGETS)
            trunk = get_peft_model(self.encoder.model, lora)
        self.encoder.model = trunk
        self.trunk = trunk  # registered, so the trainer sees (and moves) its parameters

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        texts = [f"{prompt}{t}" if prompt else str(t) for t in inputs]
        return self.encoder.features(self.encoder.rows(texts))

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**features, "sentence_embedding": self.encoder.pooled(features)}

    def get_embedding_dimension(self) -> int:
        return self.encoder.dim

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.trunk.save_pretrained(output_path)
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> DecoderModule:  # type: ignore[override]
        config = cls.load_config(model_name_or_path, subfolder=subfolder)
        return cls(**config, adapter=str(Path(model_name_or_path) / subfolder))

    def record(self, training: dict[str, Any]) -> AdapterRecord:
        source = self.encoder.source_info
        return AdapterRecord(self.base, source.weights_sha256, self.pooling, self.layer, training)


def decoder_model(base: str, *, pooling: str | None, layer: int | None, rank: int, device: str) -> Any:
    """A SentenceTransformer of one DecoderModule, ready for the trainer."""
    from sentence_transformers import SentenceTransformer

    module = DecoderModule(base, pooling or DEFAULT_METHOD, layer, rank, device=device)
    return SentenceTransformer(modules=[module], device=device)


def save_adapter(model: Any, target: Path, training: dict[str, Any]) -> None:
    module: DecoderModule = model[0]
    write_adapter(target, module.trunk, module.record(training))
