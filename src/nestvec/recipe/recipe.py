"""Recipe: how a text becomes a searchable vector, as one value with one string grammar.

`Recipe.parse("minilm:dims=128:index=ivf:codes=rabitq:rescore=10")` and
`Recipe.make(model="minilm", dims=128, index="ivf", codes="rabitq", rescore=10)` are the same
recipe; `str(recipe)` writes it back (only what differs from the defaults). Collections save it
(versioned, in config.json) with the identity of the model that made their vectors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from nestvec.encoders.identity import ModelIdentity
from nestvec.encoders.spec import EncoderSpec
from nestvec.errors import InputError, RecipeMismatchError
from nestvec.index.spec import IndexSpec
from nestvec.recipe import fields as table
from nestvec.store.chunking import LongDocuments
from nestvec.store.sparse import SparseSpec

RECIPE_VERSION = 2  # 1: nestvec 0.1 (model, identity, index with "precision", dims, sparse)


@dataclass(frozen=True)
class VectorSpec:
    """What happens to the model's vectors before they are coded: whitening or principal axes
    (fitted on the collection's first documents), and/or truncation."""

    dims: int | None = None
    whiten: bool = False
    pca: bool = False

    def __post_init__(self) -> None:
        table.check_part("vectors", self)
        if self.whiten and self.pca:
            raise InputError(
                "whiten and pca both rotate onto the principal axes (whiten also centers and rescales them); "
                "choose one."
            )

    @property
    def fitted(self) -> bool:
        """Whether the vectors pass through a step fitted on the collection's first documents."""
        return self.whiten or self.pca

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Recipe:
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    vectors: VectorSpec = field(default_factory=VectorSpec)
    index: IndexSpec = field(default_factory=IndexSpec)
    long_documents: LongDocuments = field(default_factory=LongDocuments)
    sparse: SparseSpec | None = field(default_factory=SparseSpec)  # None: no BM25 keyword index
    identity: ModelIdentity | None = None  # the model that made the stored vectors, once bound

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def make(cls, **values: Any) -> Recipe:
        """A recipe from field values by name (see `nestvec.recipe.fields.FIELDS`)."""
        return cls().with_values(**values)

    @classmethod
    def parse(cls, text: str) -> Recipe:
        recipe, query = parse(text)
        if query:
            raise InputError(
                f"{', '.join(query)} in {text!r} are search options, not part of a recipe; "
                f"a recipe takes: {table.valid_keys(query_time=False)}."
            )
        return recipe

    def with_values(self, **values: Any) -> Recipe:
        """A copy with the named fields changed; the rest keep their values."""
        current = self.values()
        for name, value in values.items():
            f = table.field(name)
            if f.query_time:
                raise InputError(f"{name} is a search option, not part of a recipe.")
            current[name] = f.check(value)
        if values.get("rescore") and current["codes"] == "float32":
            raise InputError(
                f"rescore={values['rescore']} re-scores compressed codes with the float vectors; with float32 codes "
                "it changes nothing. Drop it, or choose codes=float16, int8, binary or rabitq."
            )
        explicit = "rescore" in values or self.index.rescore != IndexSpec.make(codes=self.index.codes).rescore
        return _build(current, rescore_given=explicit, identity=self.identity)

    def bound(self, identity: ModelIdentity, *, prompts: dict[str, str] | None = None) -> Recipe:
        """This recipe with the identity of the model that embeds for it (checked against dims),
        and prompts left to the model set to those it declares (`prompts`), so that the saved
        recipe says what every text was embedded with."""
        dims = self.vectors.dims
        if dims is not None and dims > identity.dim:
            raise InputError(f"dims must be between 1 and the model's {identity.dim}, got {dims}.")
        return replace(self, identity=identity, encoder=self.encoder.resolved(prompts or {}))

    # -- reading -----------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """Every recipe field by name, as the table names them."""
        parts: dict[str, Any] = {
            "encoder": self.encoder,
            "vectors": self.vectors,
            "index": self.index,
            "documents": self.long_documents,
            "bm25": self.sparse or SparseSpec(),
        }
        out = {
            f.name: getattr(parts[f.part], f.attribute) for f in table.FIELDS if f.part in parts and f.part != "bm25"
        }
        out.update({f.name: getattr(parts["bm25"], f.attribute) for f in table.in_part("bm25") if f.name != "bm25"})
        out["bm25"] = self.sparse is not None
        return out

    @property
    def dim(self) -> int:
        """Dimension of the stored vectors."""
        if self.vectors.dims is not None:
            return self.vectors.dims
        if self.identity is None:
            raise InputError("This recipe is not bound to a model yet, so its dimension is unknown.")
        return self.identity.dim

    @property
    def model(self) -> str:
        return self.encoder.model

    def __str__(self) -> str:
        defaults = Recipe().values()
        defaults["rescore"] = IndexSpec.make(codes=self.index.codes).rescore
        parts = [self.encoder.model]
        for name, value in self.values().items():
            if name.endswith("_prompt") and (value is None or (value == "" and self.identity is not None)):
                continue  # the model's own; or, once bound (prompts resolved), none
            if name != "model" and value != defaults[name]:
                parts.append(f"{name}={_text(value)}")
        return ":".join(parts)

    # -- saving ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe_version": RECIPE_VERSION,
            "encoder": self.encoder.to_dict(),
            "vectors": self.vectors.to_dict(),
            "index": self.index.to_dict(),
            "long_documents": self.long_documents.to_dict(),
            "sparse": self.sparse.to_dict() if self.sparse else None,
            "identity": self.identity.to_dict() if self.identity else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        version = int(data.get("recipe_version", 1))
        if version > RECIPE_VERSION:
            raise InputError(
                f"This recipe is version {version}; this nestvec reads versions up to {RECIPE_VERSION}. "
                "Upgrade nestvec."
            )
        identity = ModelIdentity.from_dict(data["identity"]) if data.get("identity") else None
        if version == 1:
            details = identity.details if identity else {}
            encoder = EncoderSpec(str(data["model"]), compute=str(details.get("precision", "fp32")))
            vectors = VectorSpec(dims=int(data["dims"]) if data.get("dims") else None)
        else:
            encoder = EncoderSpec.from_dict(data["encoder"])
            vectors = VectorSpec(**data.get("vectors", {}))
        return cls(
            encoder=encoder,
            vectors=vectors,
            index=IndexSpec.from_dict(data.get("index", {})),
            long_documents=LongDocuments.from_dict(data.get("long_documents", {})),
            sparse=SparseSpec.from_dict(data.get("sparse")),
            identity=identity,
        )

    def check_encoder(self, identity: ModelIdentity, where: str) -> None:
        """Refuse an encoder whose vectors would not be comparable with the stored ones."""
        if self.identity is None:
            return
        diffs = identity.differences(self.identity)
        if diffs:
            raise RecipeMismatchError(
                f"The collection at {where} was built with model '{self.identity.name}' "
                f"(weights sha256 {self.identity.weights_sha256[:12]}…), but the encoder given is "
                f"'{identity.name}' and differs in: {'; '.join(diffs)}. Query it with the same model, "
                "or rebuild the collection with the new one."
            )


def parse(text: str, *, base: Recipe | None = None) -> tuple[Recipe, dict[str, Any]]:
    """`MODEL[:key=value]...` into a recipe and the search options it also names."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"A recipe is written MODEL[:key=value]..., got {text!r}.")
    head, *options = split_unquoted(text.strip(), ":")
    values: dict[str, Any] = {}
    if "=" in head:  # no model named: options only, on the base recipe's model
        options.insert(0, head)
    elif head:
        values["model"] = head
    query: dict[str, Any] = {}
    for option in options:
        key, sep, raw = option.partition("=")
        if not sep or key not in table.BY_NAME or key == "model":
            raise InputError(
                f"Recipe option {option!r} in {text!r} is not understood; valid: {table.valid_keys(query_time=True)}."
            )
        f = table.BY_NAME[key]
        if key in values or key in query:  # a typo's likelier than a wish to override oneself
            raise InputError(f"Recipe option {key!r} is given twice in {text!r}; keep one.")
        (query if f.query_time else values)[key] = _quoted(f, raw, text) if raw.startswith('"') else f.parse(raw)
    return (base or Recipe()).with_values(**values), query


def given_fields(text: str) -> set[str]:
    """The fields a recipe string sets itself (`model` where its head names one); the rest are defaults."""
    head, *options = split_unquoted(text.strip(), ":")
    named = {option.partition("=")[0] for option in options}
    if "=" in head:
        return named | {head.partition("=")[0]}
    return named | ({"model"} if head else set())


def _build(values: dict[str, Any], *, rescore_given: bool, identity: ModelIdentity | None) -> Recipe:
    groups: dict[str, dict[str, Any]] = {part: {} for part in table.PARTS}
    for name, value in values.items():
        f = table.BY_NAME[name]
        groups[f.part][f.attribute] = value
    index = dict(groups["index"])
    rescore = index.pop("rescore") if rescore_given else None
    strategy, codes = index.pop("strategy"), index.pop("codes")
    bm25 = groups["bm25"]
    keep = bm25.pop("bm25")
    return Recipe(
        encoder=EncoderSpec(**groups["encoder"]),
        vectors=VectorSpec(**groups["vectors"]),
        index=IndexSpec.make(strategy, codes, rescore=rescore, **{k: v for k, v in index.items() if k != "rescore"}),
        long_documents=LongDocuments(**groups["documents"]),
        sparse=SparseSpec(**bm25) if keep else None,
        identity=identity,
    )


def split_unquoted(text: str, sep: str) -> list[str]:
    """`text` cut at every `sep` outside double quotes (a prompt such as "query: " holds a ':')."""
    parts, current, quoted, escaped = [], "", False, False
    for ch in text:
        if ch == sep and not quoted:
            parts.append(current)
            current = ""
            continue
        current += ch
        if quoted and escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
    if quoted:
        raise InputError(f'{text!r} opens a quote it does not close; write text values as key="...".')
    return [*parts, current]


def _quoted(f: table.Field, raw: str, whole: str) -> Any:
    """A value written as a JSON string: text with ':' or spaces at its ends (a prompt)."""
    if f.kind is not str:
        raise InputError(f"{f.name} takes {f.shape()}; quotes are for text values, got {raw} in {whole!r}.")
    try:
        value = json.loads(raw)
    except ValueError:
        raise InputError(f"{f.name}={raw} in {whole!r} is not a well-formed quoted text (JSON string).") from None
    return f.check(value)


def _text(value: Any) -> str:
    if isinstance(value, str) and (not value or value != value.strip() or any(c in value for c in ':"\\')):
        return json.dumps(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)
