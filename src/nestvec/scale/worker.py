"""What a Ray actor does: load the recipe's model once, then embed shard after shard."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.recipe import Recipe
from nestvec.scale.plan import ReadOptions, Shard
from nestvec.scale.shards import write_shard
from nestvec.store import chunking


class ShardEmbedder:
    """A Ray Data actor: `__call__` takes a batch of shard specs and returns what each wrote."""

    def __init__(
        self, *, recipe: dict[str, Any], read: dict[str, Any], folder: str, store_as: str, threads: int,
        batch_size: int, device: str | None = None,
    ) -> None:  # fmt: skip
        from nestvec.encoders import encoder_for
        from nestvec.encoders.prompts import prompted

        self.recipe = Recipe.from_dict(recipe)
        self.read = ReadOptions(**{**read, "text_fields": tuple(read["text_fields"])})
        self.encoder = encoder_for(self.recipe.encoder, threads=threads, device=device)
        # a worker machine with other weights under the same name must not mix its vectors in
        self.recipe.check_encoder(self.encoder.identity, f"{folder} (the job's recipe)")
        self.folder, self.store_as, self.batch_size = Path(folder), store_as, batch_size
        self.documents = prompted(self.encoder, self.recipe.encoder.prompt("document"))  # the bound recipe's

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        done = [json.dumps(self.embed(Shard.from_json(str(spec)))) for spec in batch["spec"]]
        return {"result": np.array(done, dtype=object)}

    def embed(self, shard: Shard) -> dict[str, Any]:
        start = time.perf_counter()
        records = list(self.read.reader(Path(shard.path), shard.span, shard.types))
        texts = [r.text for r in records]
        plans = chunking.plan(self.documents, texts, self.recipe.long_documents)
        pieces = [(r, n, s, e) for r, p in zip(records, plans, strict=True) for n, (s, e) in enumerate(p.spans)]
        vectors = self.documents.encode(
            [r.text[s:e] for r, _, s, e in pieces], batch_size=self.batch_size, progress=False
        )
        heads = [(r, p) if n == 0 else None for (r, n, _, _), p in zip(pieces, _plan_per_piece(plans), strict=True)]
        columns = {  # document fields on each document's first chunk only
            "id": [r.id for r, _, _, _ in pieces],
            "chunk": np.array([n for _, n, _, _ in pieces], dtype=np.int32),
            "start": np.array([s for _, _, s, _ in pieces], dtype=np.int32),
            "end": np.array([e for _, _, _, e in pieces], dtype=np.int32),
            "text": [h[0].text if h else None for h in heads],
            "metadata": [json.dumps(h[0].metadata) if h else None for h in heads],
            "tokens": [h[1].tokens if h else None for h in heads],
            "truncated": [h[1].truncated if h else None for h in heads],
        }
        meta = {"recipe": self.recipe.to_dict(), "store_as": self.store_as, "dim": int(vectors.shape[1])}
        digest = write_shard(self.folder / shard.name, columns, vectors, store_as=self.store_as, meta=meta)
        return {
            "shard": shard.index,
            "name": shard.name,
            "rows": len(records),
            "chunks": len(pieces),
            "sha256": digest,
            "seconds": round(time.perf_counter() - start, 3),
        }


def _plan_per_piece(plans: list[chunking.DocPlan]) -> list[chunking.DocPlan]:
    return [p for p in plans for _ in p.spans]
