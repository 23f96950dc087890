"""Transformer encoders from sentence-transformers folders, run with torch + transformers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from nestvec.encoders.base import ModelIdentity, show_progress
from nestvec.encoders.pooling import pool
from nestvec.encoders.st_folder import STFolder
from nestvec.encoders.tokenize import TextTokenizer
from nestvec.errors import InputError, MissingExtraError, ModelError

if TYPE_CHECKING:
    import torch


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("torch", "transformer", "Transformer models") from exc
    return torch


def _load_model(folder: STFolder) -> Any:
    # Belt and braces: nothing below may reach a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise MissingExtraError("transformers", "transformer", "Transformer models") from exc
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(
            str(folder.transformer_dir),
            local_files_only=True,
            use_safetensors=True,
            trust_remote_code=False,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"Could not load the transformer in {folder.transformer_dir}: {exc}") from exc
    return model.eval()


class _Dense:
    """A sentence-transformers Dense module: linear layer plus optional tanh."""

    def __init__(self, path: Any, activation: str) -> None:
        from safetensors.torch import load_file

        tensors = load_file(str(next(iter(sorted(path.glob("*.safetensors"))))))
        self.weight = tensors["linear.weight"]
        self.bias = tensors.get("linear.bias")
        self.tanh = activation.endswith("Tanh")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        y = torch.nn.functional.linear(
            x, self.weight.to(x.device), None if self.bias is None else self.bias.to(x.device)
        )
        return torch.tanh(y) if self.tanh else y


class TransformerEncoder:
    """Encodes like sentence-transformers' SentenceTransformer.encode for the same folder."""

    kind = "transformer"

    def __init__(self, folder: STFolder, *, name: str, device: str | None = None, threads: int | None = None) -> None:
        torch = _import_torch()
        if threads is not None:
            if threads < 1:
                raise InputError(f"threads must be ≥ 1, got {threads}.")
            torch.set_num_threads(threads)
        self.folder = folder
        self.name = name
        self.source = str(folder.root)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        config = folder.config()
        model_max = int(config.get("max_position_embeddings", folder.max_seq_length))
        self.max_tokens = min(folder.max_seq_length, model_max)
        pad_id = config.get("pad_token_id")
        self.tokenizer = TextTokenizer(
            folder.transformer_dir / "tokenizer.json",
            max_tokens=self.max_tokens,
            lowercase=folder.do_lower_case,
            pad_id=int(pad_id) if pad_id is not None else 0,
        )
        self.model = _load_model(folder).to(self.device)
        self._uses_token_types = int(config.get("type_vocab_size", 0) or 0) > 0
        self._dense = [_Dense(spec.path, spec.activation) for spec in folder.dense]
        hidden = int(config["hidden_size"]) * len(folder.pooling_modes)
        self.dim = folder.dense[-1].out_features if folder.dense else hidden

    @cached_property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(
            kind=self.kind,
            name=self.name,
            weights_sha256=self.folder.weights_sha256(),
            dim=self.dim,
            max_tokens=self.max_tokens,
            normalized=self.folder.normalize,
            details={
                "pooling": list(self.folder.pooling_modes),
                "dense": [s.out_features for s in self.folder.dense],
                "lowercase": self.folder.do_lower_case,
            },
        )

    @property
    def special_tokens(self) -> int:
        return self.tokenizer.special_tokens

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return self.tokenizer.token_counts(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.tokenizer.token_offsets(text)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        if isinstance(texts, str):
            raise InputError("encode() takes a list of texts, got one string; wrap it: encode([text]).")
        if batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}.")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), unit="text", disable=not show_progress(progress, len(texts)))
        torch = _import_torch()
        with torch.inference_mode(), bar:
            for batch in self.tokenizer.batches(texts, batch_size):
                out[batch.positions] = self._forward(batch).cpu().numpy()
                bar.update(len(batch.positions))
        return out

    def _forward(self, batch: Any) -> torch.Tensor:
        import torch

        vectors = self.pooled(batch)
        return torch.nn.functional.normalize(vectors, p=2, dim=1) if self.folder.normalize else vectors

    def pooled(self, batch: Any) -> torch.Tensor:
        """Pooled (and Dense-projected) vectors of a tokenized batch, before any normalization."""
        import torch

        mask = torch.from_numpy(batch.attention_mask).to(self.device)
        inputs = {"input_ids": torch.from_numpy(batch.input_ids).to(self.device), "attention_mask": mask}
        if self._uses_token_types:
            inputs["token_type_ids"] = torch.from_numpy(batch.token_type_ids).to(self.device)
        tokens = self.model(**inputs).last_hidden_state
        vectors = pool(tokens, mask, self.folder.pooling_modes)
        for dense in self._dense:
            vectors = dense(vectors)
        return vectors.float()
