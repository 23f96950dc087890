"""Setting: a recipe being measured, plus how retrieval searches with it (mode and fusion).

Written in the recipe grammar: 'minilm', 'minilm:dims=128:codes=int8',
'minilm:backend=onnx:compute=int8', 'minilm:index=hnsw:mode=hybrid:dense_weight=0.5'.
Vector tasks see exactly the vectors a collection with this recipe would compare: the same
vector steps and the codes of index/codec.py, decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nestvec.encoders import Encoder, encoder_for
from nestvec.index import codec
from nestvec.recipe import Recipe, parse
from nestvec.recipe import fields as table
from nestvec.store.fusion import Fusion
from nestvec.transforms.steps import VectorSteps


@dataclass(frozen=True)
class Setting:
    recipe: Recipe = field(default_factory=Recipe)
    mode: str = "dense"  # retrieval: dense, sparse (BM25) or hybrid
    fusion: Fusion = field(default_factory=Fusion)  # hybrid retrieval

    def __post_init__(self) -> None:
        table.field("mode").check(self.mode)

    @classmethod
    def parse(cls, spec: str) -> Setting:
        recipe, query = parse(spec)
        return cls._with_query(recipe, query)

    @classmethod
    def make(cls, **values: Any) -> Setting:
        """A setting from field values by name: recipe fields and search options alike."""
        return cls().with_values(**values)

    @classmethod
    def _with_query(cls, recipe: Recipe, query: dict[str, Any]) -> Setting:
        return cls(recipe, *table.search_options(query))

    def with_values(self, **values: Any) -> Setting:
        changed_query = {k: v for k, v in values.items() if table.field(k).query_time}
        mode = changed_query.get("mode", self.mode)
        # the fusion carried over only where it means something: search options refuse it otherwise
        fields = [f for f in table.in_part("search") if f.name != "mode"] if mode == "hybrid" else []
        query = {f.name: getattr(self.fusion, f.attribute) for f in fields}
        query["mode"] = self.mode
        recipe = self.recipe.with_values(**{k: v for k, v in values.items() if k not in changed_query})
        return self._with_query(recipe, {**query, **changed_query})

    @property
    def label(self) -> str:
        parts = [str(self.recipe)]
        if self.mode != "dense":
            parts.append(f"mode={self.mode}")
        if self.mode == "hybrid":
            defaults = Fusion()
            parts.append(f"fusion={self.fusion.method}")
            for f in table.in_part("search"):
                value = getattr(self.fusion, f.attribute, None)
                if f.name not in ("mode", "fusion") and value != getattr(defaults, f.attribute):
                    parts.append(f"{f.name}={value:g}")
        return ":".join(parts)

    # -- what it measures --------------------------------------------------------------------
    def encoder(self) -> Encoder:
        spec = self.recipe.encoder
        encoder = encoder_for(spec)
        self.recipe.bound(encoder.identity)  # checks dims against the model
        return encoder

    def symmetric_encoder(self) -> Encoder:
        """The encoder for tasks whose two sides are alike (STS, pairs, classification,
        clustering): the query prompt before every text (nestvec.encoders.prompts)."""
        from nestvec.encoders.prompts import model_prompts, prompted

        encoder = self.encoder()
        return prompted(encoder, self.recipe.encoder.resolved(model_prompts(encoder)).prompt("query"))

    def bytes_per_vector(self, encoder: Encoder) -> int:
        return self.recipe.index.bytes_per_code(self.recipe.vectors.dims or encoder.dim)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Vector steps fitted on `vectors` and applied, then coded and decoded as a collection would."""
        codec.check_decodable(self.recipe.index.codes)
        steps = VectorSteps.for_spec(self.recipe.vectors, model_dim=vectors.shape[1])
        if steps.step is not None and not steps.fitted:
            # Fitted on the vectors being evaluated (Whiten.fit refuses fewer than 2); a collection's
            # larger minimum guards a fit that must serve every later document.
            steps = VectorSteps(steps.step.fit(vectors))
        return codec.roundtrip(self.recipe.index.codes, steps.apply(vectors))


DEFAULT = Setting()
