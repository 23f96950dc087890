"""A collection's recipe: how every stored vector was made, so queries are made the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nestvec.encoders.base import ModelIdentity
from nestvec.errors import RecipeMismatchError
from nestvec.index.spec import IndexSpec
from nestvec.store.chunking import LongDocuments
from nestvec.store.sparse import SparseSpec


@dataclass(frozen=True)
class Recipe:
    model: str
    identity: ModelIdentity
    index: IndexSpec = field(default_factory=IndexSpec)
    long_documents: LongDocuments = field(default_factory=LongDocuments)
    dims: int | None = None  # Matryoshka truncation (with renormalization) of documents and queries
    sparse: SparseSpec | None = None  # the BM25 keyword index's tokenization, when it has one

    @property
    def dim(self) -> int:
        """Dimension of the stored vectors."""
        return self.dims or self.identity.dim

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "identity": self.identity.to_dict(),
            "index": self.index.to_dict(),
            "long_documents": self.long_documents.to_dict(),
            "dims": self.dims,
            "sparse": self.sparse.to_dict() if self.sparse else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        return cls(
            model=str(data["model"]),
            identity=ModelIdentity.from_dict(data["identity"]),
            index=IndexSpec.from_dict(data.get("index", {})),
            long_documents=LongDocuments.from_dict(data.get("long_documents", {})),
            dims=int(data["dims"]) if data.get("dims") else None,
            sparse=SparseSpec.from_dict(data.get("sparse")),
        )

    def check_encoder(self, identity: ModelIdentity, where: str) -> None:
        """Refuse an encoder whose vectors would not be comparable with the stored ones."""
        diffs = identity.differences(self.identity)
        if diffs:
            raise RecipeMismatchError(
                f"The collection at {where} was built with model '{self.identity.name}' "
                f"(weights sha256 {self.identity.weights_sha256[:12]}…), but the encoder given is "
                f"'{identity.name}' and differs in: {'; '.join(diffs)}. Query it with the same model, "
                "or rebuild the collection with the new one."
            )
