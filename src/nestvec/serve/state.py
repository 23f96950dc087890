"""What one running server holds: its models (in the model process), the collections, keys, limits, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nestvec.serve.auth import KeyStore
from nestvec.serve.batcher import BatchPolicy
from nestvec.serve.limits import Limits
from nestvec.serve.metrics import Metrics

if TYPE_CHECKING:
    from nestvec.rerank.model import Reranker
    from nestvec.serve.catalog import Catalog
    from nestvec.serve.encoders import BatchedEncoder, ServedEncoders


@dataclass(frozen=True)
class ServeConfig:
    """Everything `nestvec serve` takes. `keys=None` turns authentication off (loopback use)."""

    model: str = "minilm"
    collections: tuple[Path, ...] = ()
    data_dir: Path | None = None
    keys: Path | None = None
    limits: Limits = field(default_factory=Limits)
    batching: BatchPolicy = field(default_factory=BatchPolicy)
    cors_origins: tuple[str, ...] = ()
    threads: int | None = None
    backend: str = "auto"  # how a transformer model runs: auto, torch or onnx
    compute: str = "fp32"  # its arithmetic: fp32, int8 (onnx), bf16 (torch), fp16 (torch on CUDA)
    layers: int | None = None  # the main model's first L layers only (collections use their recipe's)
    reranker: str | None = None  # a cross-encoder for POST /rerank and search's rerank


@dataclass
class ServerState:
    config: ServeConfig
    encoders: ServedEncoders
    catalog: Catalog
    keys: KeyStore | None
    metrics: Metrics
    reranker: Reranker | None = None

    @property
    def encoder(self) -> BatchedEncoder:
        """The served model (/v1/embeddings)."""
        return self.encoders.main

    def close(self) -> None:
        self.catalog.close()  # checkpoints first, while the encoders still answer
        self.encoders.close()
