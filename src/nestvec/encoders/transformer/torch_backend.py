"""Transformer encoders from sentence-transformers folders, run with torch + transformers."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from nestvec.encoders.transformer.folder import STFolder
from nestvec.encoders.transformer.layers import cut_layers
from nestvec.encoders.transformer.pooling import pool
from nestvec.encoders.transformer.sentence import ACCELERATOR_BATCH_TOKENS, SentenceEncoder
from nestvec.encoders.transformer.tokenize import Batch
from nestvec.errors import InputError, MissingExtraError, ModelError
from nestvec.registry import unknown_name_message

if TYPE_CHECKING:
    import torch


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("torch", "transformer", "Transformer models") from exc
    return torch


def _load_model(folder: STFolder, *, attention: str | None = None) -> Any:
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
        options: dict[str, Any] = {"attn_implementation": attention} if attention else {}
        model = AutoModel.from_pretrained(
            str(folder.transformer_dir), local_files_only=True, use_safetensors=True, trust_remote_code=False, **options
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


TORCH_COMPUTES = ("fp32", "fp16", "bf16")


class TransformerEncoder(SentenceEncoder):
    """Encodes like sentence-transformers' SentenceTransformer.encode for the same folder, with torch.

    `compute` fp16/bf16 runs the network in half precision (fp16 needs CUDA); pooling and the
    final normalization stay in fp32.
    """

    def __init__(
        self,
        folder: STFolder,
        *,
        name: str,
        device: str | None = None,
        threads: int | None = None,
        compute: str = "fp32",
        attention: str | None = None,
        layers: int | None = None,
    ) -> None:
        torch = _import_torch()
        if threads is not None:
            if threads < 1:
                raise InputError(f"threads must be ≥ 1, got {threads}.")
            torch.set_num_threads(threads)
        super().__init__(folder, name=name, layers=layers)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.compute = _check_compute(compute, self.device)
        self.model = _load_model(folder, attention=attention)
        if self.layers is not None:
            self.model = cut_layers(self.model, self.layers)
        self.model = self.model.to(self.device)
        if self.compute != "fp32":
            self.model = self.model.to(getattr(torch, {"fp16": "float16", "bf16": "bfloat16"}[self.compute]))
        self._dense = [_Dense(spec.path, spec.activation) for spec in folder.dense]
        self._cuda = self.device.startswith("cuda")
        self.in_flight = 2 if self._cuda else 0
        if self.device != "cpu":
            self.batch_tokens = ACCELERATOR_BATCH_TOKENS

    def _running(self) -> Any:
        return _import_torch().inference_mode()

    def _launch(self, batch: Batch) -> Any:
        import torch

        vectors = self.pooled(batch)
        if self.folder.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        if not self._cuda:
            return vectors
        # Copy back into pinned memory without waiting: the GPU goes on to the next batch while
        # this one's vectors travel, and _collect waits on the event only when they are needed.
        host = torch.empty(vectors.shape, dtype=vectors.dtype, pin_memory=True)
        host.copy_(vectors, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        return host, done

    def _collect(self, handle: Any) -> np.ndarray:
        if not self._cuda:
            return np.asarray(handle.numpy())
        host, done = handle
        done.synchronize()
        return np.asarray(host.numpy())

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        import torch

        tensor = torch.from_numpy(array)
        # Pinned host memory lets the copy overlap the GPU's work on the previous batch.
        return tensor.pin_memory().to(self.device, non_blocking=True) if self._cuda else tensor

    def pooled(self, batch: Batch) -> torch.Tensor:
        """Pooled (and Dense-projected) fp32 vectors of a tokenized batch, before any normalization."""
        types = self._tensor(batch.token_type_ids) if self.uses_token_types else None
        return self.pooled_tensors(self._tensor(batch.input_ids), self._tensor(batch.attention_mask), types)

    def pooled_tensors(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        tokens = self.model(**inputs).last_hidden_state.float()
        vectors = pool(tokens, attention_mask, self.folder.pooling_modes)
        for dense in self._dense:
            vectors = dense(vectors)
        return vectors.float()


def _check_compute(compute: str, device: str) -> str:
    if compute not in TORCH_COMPUTES:
        raise InputError(unknown_name_message("torch compute", compute, list(TORCH_COMPUTES)))
    if compute == "fp16" and not device.startswith("cuda"):
        raise InputError(
            f"compute 'fp16' needs a CUDA device, got device {device!r}; on CPU use 'bf16', "
            "or backend='onnx' with compute 'int8'."
        )
    return compute
