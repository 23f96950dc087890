"""The one table of recipe fields: name, type, default, range, choices and help of each setting.

The string grammar (`minilm:dims=128:index=ivf:codes=rabitq`), the keyword arguments of
`Collection.create`, the CLI options of `index build`, the HTTP schema of a new collection and
eval's settings are all read off this table, so their names, defaults and ranges cannot drift.
Defaults come from the value objects themselves (IndexSpec(), Fusion(), ...), not copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nestvec.encoders.spec import BACKENDS, COMPUTES, POOLINGS, EncoderSpec
from nestvec.errors import InputError
from nestvec.index.spec import CODES, STRATEGIES, IndexSpec
from nestvec.registry import unknown_name_message
from nestvec.store.chunking import MODES as LONG_MODES
from nestvec.store.chunking import LongDocuments
from nestvec.store.fusion import METHODS, MODES, Fusion
from nestvec.store.sparse import STEMMERS, STOPWORDS, SparseSpec

# Parts of a recipe (and of a search, for the query-time fields), each one value object.
PARTS = ("encoder", "vectors", "index", "documents", "bm25", "search")
_TRUE, _FALSE = ("yes", "true", "1", "on"), ("no", "false", "0", "off")


@dataclass(frozen=True)
class Field:
    name: str  # grammar key, keyword argument, HTTP field; the CLI option is --name-with-dashes
    kind: type  # str, int, float or bool
    default: Any
    part: str
    help: str
    attr: str = ""  # the attribute in its part's value object, when it differs from `name`
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    optional: bool = False  # None is a value ("let nestvec choose", or "no limit")
    label: str = ""  # what error messages call it, when not its name

    @property
    def called(self) -> str:
        return self.label or self.name.replace("_", " ")

    @property
    def attribute(self) -> str:
        return self.attr or self.name

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def query_time(self) -> bool:
        return self.part == "search"

    def shape(self) -> str:
        """How a value is written, for error messages: dims=N, codes=float32|int8|..."""
        if self.choices:
            return f"{self.name}={'|'.join(self.choices)}"
        return f"{self.name}=" + {bool: "yes|no", int: "N", float: "X", str: "NAME"}[self.kind]

    def parse(self, text: str) -> Any:
        """A value written as text (grammar, CLI), checked."""
        if self.optional and (text.lower() in ("none", "auto") or (text == "" and self.kind is not str)):
            return None  # an empty text value is a value: an empty prompt is "no prompt"
        if self.kind is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise InputError(f"{self.name} takes yes or no, got {text!r}.")
            return text.lower() in _TRUE
        if self.kind in (int, float):
            try:
                value: Any = self.kind(text)
            except ValueError:
                kind = "an integer" if self.kind is int else "a number"
                raise InputError(f"{self.name} must be {kind}, got {text!r}.") from None
            return self.check(value)
        return self.check(text)

    def check(self, value: Any) -> Any:
        """A value given as a Python object (keyword, JSON), checked; returns it normalized."""
        if value is None:
            if self.optional:
                return None
            raise InputError(f"{self.name} needs a value ({self.shape()}); None is not one.")
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        checked: Any = value
        if not isinstance(value, self.kind) or (self.kind is not bool and isinstance(value, bool)):
            raise InputError(f"{self.name} must be {self.kind.__name__} ({self.shape()}), got {value!r}.")
        if self.choices and checked not in self.choices:
            raise InputError(unknown_name_message(self.called, checked, list(self.choices)))
        if (self.low is not None and checked < self.low) or (self.high is not None and checked > self.high):
            raise InputError(f"{self.name} must be {self.range_text()}, got {value!r}.")
        return value

    def range_text(self) -> str:
        if self.kind is int and self.high is None and self.low in (0, 1):
            text = "a positive integer" if self.low == 1 else "an integer ≥ 0"
            return text + (" or None" if self.optional else "")
        if self.low is not None and self.high is not None:
            return f"between {self.low:g} and {self.high:g}"
        return f"≥ {self.low:g}" if self.low is not None else f"≤ {self.high:g}"


class _Defaults:
    """A dataclass's own field defaults, read without building one (whose checks read this table)."""

    def __init__(self, cls: type) -> None:
        self._fields = cls.__dataclass_fields__  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return self._fields[name].default


_I, _F, _D, _L, _S = (_Defaults(c) for c in (IndexSpec, Fusion, LongDocuments, SparseSpec, EncoderSpec))

FIELDS: tuple[Field, ...] = (
    Field("model", str, _S.model, "encoder", "Model name (minilm) or model folder."),
    Field("backend", str, _S.backend, "encoder", "How a transformer runs.", choices=BACKENDS),
    Field("compute", str, _S.compute, "encoder", "The network's arithmetic.", choices=COMPUTES),
    Field("layers", int, _S.layers, "encoder", "Run only the first L transformer layers.", low=1, optional=True),
    Field(
        "pooling",
        str,
        _S.pooling,
        "encoder",
        "Decoder LLMs: how token states become a vector (default last).",
        choices=POOLINGS,
        optional=True,
    ),
    Field(
        "query_prompt",
        str,
        _S.query_prompt,
        "encoder",
        "Text before each query (default: the model's own).",
        optional=True,
    ),
    Field(
        "document_prompt",
        str,
        _S.document_prompt,
        "encoder",
        "Text before each document (default: the model's own).",
        optional=True,
    ),
    Field(
        "dims",
        int,
        None,
        "vectors",
        "Keep this many dimensions (Matryoshka, whitened or principal axes).",
        low=1,
        optional=True,
    ),
    Field("whiten", bool, False, "vectors", "Whiten the vectors, fitted on the first documents added."),
    Field(
        "pca",
        bool,
        False,
        "vectors",
        "Rotate onto the principal axes of the first documents added, so dims keeps the most of them.",
    ),
    Field(
        "index",
        str,
        _I.strategy,
        "index",
        "Search strategy.",
        attr="strategy",
        choices=STRATEGIES,
        label="index strategy",
    ),
    Field(
        "codes", str, _I.codes, "index", "Precision of the codes held in RAM.", choices=CODES, label="code precision"
    ),
    Field(
        "rescore",
        int,
        None,
        "index",
        "Rescore k×N candidates with floats (default: 4 below float32).",
        low=0,
        optional=True,
    ),
    Field("nlist", int, _I.nlist, "index", "IVF lists (default: from the corpus size).", low=1, optional=True),
    Field("nprobe", int, _I.nprobe, "index", "IVF lists probed per query (default: nlist/16).", low=1, optional=True),
    Field("hnsw_m", int, _I.hnsw_m, "index", "HNSW links per node.", low=2, high=512),
    Field("ef_construction", int, _I.ef_construction, "index", "HNSW build beam.", low=1),
    Field("ef_search", int, _I.ef_search, "index", "HNSW search beam.", low=1),
    Field("spill", int, _I.spill, "index", "IVF: percent of vectors also stored in a second list.", low=0, high=100),
    Field(
        "code_dims",
        int,
        _I.code_dims,
        "index",
        "RaBitQ: code a principal projection of this width.",
        low=1,
        optional=True,
    ),
    Field(
        "mmap",
        bool,
        _I.mmap,
        "index",
        "Flat/HNSW: search the saved codes in place through the page cache (shared between processes).",
    ),
    Field(
        "long_documents",
        str,
        _D.mode,
        "documents",
        "Documents over the model's window.",
        attr="mode",
        choices=LONG_MODES,
        label="long-document mode",
    ),
    Field("overlap", int, _D.overlap, "documents", "Tokens shared by neighbouring windows (split).", low=0),
    Field("bm25", bool, True, "bm25", "Keep a BM25 keyword index (sparse and hybrid search)."),
    Field("stemmer", str, _L.stemmer, "bm25", "BM25 stemming.", choices=STEMMERS),
    Field("stopwords", str, _L.stopwords, "bm25", "BM25 stop words.", choices=STOPWORDS, label="stop word list"),
    Field(
        "max_postings",
        int,
        _L.max_postings,
        "bm25",
        "BM25 posting budget per query (none: no limit).",
        low=1,
        optional=True,
    ),
    Field("mode", str, "dense", "search", "Search mode.", choices=MODES, label="search mode"),
    Field("fusion", str, _F.method, "search", "Hybrid fusion.", attr="method", choices=METHODS, label="fusion method"),
    Field("dense_weight", float, _F.dense_weight, "search", "Hybrid: weight of the dense side.", low=0.0, high=1.0),
    Field("rrf_k", int, _F.rrf_k, "search", "RRF: the rank offset k.", low=1),
    Field("depth", int, _F.depth, "search", "Hybrid: candidates taken from each side.", low=1),
)
BY_NAME = {f.name: f for f in FIELDS}


def field(name: str) -> Field:
    if name not in BY_NAME:
        raise InputError(unknown_name_message("recipe field", name, list(BY_NAME)))
    return BY_NAME[name]


def in_part(part: str) -> list[Field]:
    return [f for f in FIELDS if f.part == part]


def check_part(part: str, value: object) -> None:
    """Check a part's value object against the table (ranges and types live here only)."""
    for f in in_part(part):
        if hasattr(value, f.attribute):
            f.check(getattr(value, f.attribute))


def search_options(values: dict[str, Any]) -> tuple[str, Fusion]:
    """(mode, Fusion) from search fields by name, checked; those not given keep their defaults."""
    checked = {name: field(name).check(value) for name, value in values.items()}
    mode = checked.pop("mode", "dense")
    if checked and mode != "hybrid":
        raise InputError(
            f"{', '.join(sorted(checked))} shape how hybrid search merges its dense and BM25 lists; with mode "
            f"{mode} they do nothing. Add mode hybrid (--mode hybrid), or drop them."
        )
    return mode, Fusion(**{field(name).attribute: value for name, value in checked.items()})


def valid_keys(*, query_time: bool) -> str:
    return ", ".join(f.shape() for f in FIELDS if f.name != "model" and (query_time or not f.query_time))
