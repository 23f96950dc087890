"""Request and response bodies (pydantic), which also make the OpenAPI schema at /docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from nestvec.recipe import fields as table


def _encodable(text: str | None) -> str | None:
    """JSON can carry lone surrogates ("\\ud800") that no tokenizer accepts: refuse them up front."""
    if text is None:  # an optional text left out (a search by query_vector)
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"text is not valid Unicode (unpaired surrogate at position {exc.start})") from None
    return text


# -- embeddings (OpenAI schema) ------------------------------------------------------------------
class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients may send `user` and future fields

    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts. Token-id arrays are refused: send text."
    )
    model: str = Field(description="The served model: its name (GET /v1/models) or registry name.")
    dimensions: int | None = Field(default=None, ge=1, description="Matryoshka: keep the first N dims, renormalize.")
    encoding_format: Literal["float", "base64"] = "float"
    truncate: bool = Field(
        default=True, description="Texts over the model's window: embed their first tokens (true) or refuse (413)."
    )
    input_type: Literal["query", "document"] | None = Field(
        default=None,
        description="Put the model's query or document prompt (from its folder) before each text; none: as given.",
    )
    user: str | None = None


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "nestvec"
    dim: int
    max_tokens: int


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- collections ---------------------------------------------------------------------------------
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _from_table(field: table.Field) -> tuple[Any, Any]:
    """A pydantic field with the recipe table's type, choices, range, default and help."""
    kind: Any = Literal[field.choices] if field.choices else field.kind  # type: ignore[valid-type]
    if field.optional:
        kind = kind | None
    ranges: dict[str, Any] = {k: v for k, v in (("ge", field.low), ("le", field.high)) if v is not None}
    return kind, Field(default=field.default, description=field.help, **ranges)


class _CreateBase(BaseModel):
    """A new collection: its name and recipe fields (as in the recipe grammar); unset fields keep their defaults."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Letters, digits, '_', '.', '-'; at most 64.")
    model: str | None = Field(default=None, description="A registered model name; default: the served model.")
    recipe: str | None = Field(default=None, description="A recipe string, e.g. dims=128:index=hnsw:codes=int8.")


# The server's --backend and --compute decide how models run, so a new collection names only the
# model, how many of its layers to run and its pooling (the server loads each (model, layers,
# pooling) once) and its prompts.
RECIPE_FIELDS = [
    f.name
    for f in table.FIELDS
    if f.part in ("vectors", "index", "documents", "bm25")
    or f.name in ("layers", "pooling", "query_prompt", "document_prompt")
]


class CollectionSummary(BaseModel):
    name: str
    documents: int
    model: str
    dim: int
    index: str
    bm25: bool


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=512)
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    vector: list[float] | None = Field(
        default=None, description="Its vector, made elsewhere by the collection's model (then the model does not run)."
    )

    _check_text = field_validator("id", "text")(_encodable)


class AddDocuments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1)
    upsert: bool = Field(default=False, description="Replace documents whose id is stored (else 409).")


class AddResult(BaseModel):
    added: int
    updated: int
    truncated: int
    chunks: int
    seconds: float


class DocumentOut(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]


class DeleteDocuments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1)


class Deleted(BaseModel):
    deleted: list[str]


class _SearchBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(default=None, min_length=1, description="The query text (or send query_vector).")
    query_vector: list[float] | None = Field(
        default=None, description="A query vector made by the collection's model (dense search; unit length)."
    )
    k: int = Field(default=10, ge=1)
    filter: dict[str, Any] | None = None
    rerank: bool = Field(default=False, description="Re-score the first rerank_depth hits with the server's reranker.")
    rerank_depth: int = Field(default=50, ge=1, le=1000, description="Hits the reranker re-scores.")

    _check_query = field_validator("query")(_encodable)

    @model_validator(mode="after")
    def _one_query(self) -> _SearchBase:
        if (self.query is None) == (self.query_vector is None):
            raise ValueError("send exactly one of query (text) and query_vector")
        return self


SEARCH_FIELDS = [f.name for f in table.in_part("search")]

# Built from the recipe table, so the HTTP schema has its names, defaults and ranges; mypy sees the bases.
if TYPE_CHECKING:
    CreateCollection = _CreateBase
    SearchRequest = _SearchBase
else:
    CreateCollection = create_model(
        "CreateCollection", __base__=_CreateBase, **{n: _from_table(table.field(n)) for n in RECIPE_FIELDS}
    )
    SearchRequest = create_model(
        "SearchRequest", __base__=_SearchBase, **{n: _from_table(table.field(n)) for n in SEARCH_FIELDS}
    )


class RerankRequest(BaseModel):
    """Text Embeddings Inference's /rerank request."""

    model_config = ConfigDict(extra="ignore")  # TEI clients may send truncation_direction and the like

    query: str = Field(min_length=1)
    texts: list[str] = Field(min_length=1)
    raw_scores: bool = Field(default=False, description="Logits instead of sigmoid scores.")
    return_text: bool = Field(default=False, description="Each result carries its text.")
    truncate: bool = Field(default=True, description="Pairs over the model's window: cut (true) or refuse (413).")

    _check_query = field_validator("query")(_encodable)


class Rank(BaseModel):
    index: int
    score: float
    text: str | None = None


class ChunkOut(BaseModel):
    number: int
    start: int
    end: int
    text: str


class HitOut(BaseModel):
    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    chunk: ChunkOut | None = None


class SearchResponse(BaseModel):
    collection: str
    mode: str
    hits: list[HitOut]
