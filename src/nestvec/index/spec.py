"""IndexSpec: which search strategy over which code precision, with its tuning knobs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from nestvec.errors import InputError
from nestvec.registry import unknown_name_message

STRATEGIES = ("flat", "hnsw", "ivf")
CODES = ("float32", "float16", "int8", "binary", "rabitq")
UNSUPPORTED = {("hnsw", "rabitq")}  # (strategy, codes) pairs with no faiss structure here
_TUNABLE = ("rescore", "hnsw_m", "ef_construction", "ef_search", "nlist", "nprobe", "spill", "code_dims", "mmap")
MAPPABLE = ("flat", "hnsw")  # strategies whose saved codes and graph faiss can search in place


@dataclass(frozen=True)
class IndexSpec:
    """`strategy` flat (exact scan), hnsw (graph) or ivf (inverted lists) over `codes` of some precision.

    Codes other than float32 keep the float vectors in a memory-mapped file beside the index:
    the best k × `rescore` candidates are re-ranked with them (0 turns rescoring off).
    `binary` codes are sign bits compared by Hamming distance; `rabitq` codes are the sign bits of
    the randomly rotated vector plus two floats (RaBitQ, in faiss), scored against the float
    query: at the widths of real models (128+ dims) they rank well above Hamming for 8 more bytes
    a vector (below ~64 dims Hamming can do better); flat or ivf only.
    `spill` (ivf, codes other than binary) stores that percentage of the vectors, those nearest a
    list boundary, in a second list too, so fewer probed lists reach the same recall.
    `code_dims` (rabitq) codes a projection of the vectors onto their top principal directions
    (uncentered, so inner products are kept within it): fewer bytes a code; the candidates are
    still rescored with the full vectors.
    `mmap` (flat, hnsw) searches the saved codes and graph where they lie in the checkpoint file,
    through the page cache, instead of a private copy: processes on one collection share one copy
    that the kernel may evict. File mappings rarely get huge pages, which an HNSW graph's cluster
    order (index/layout.py) makes up for. A process's first write to such an index copies it
    into its own memory.
    """

    strategy: str = "flat"
    codes: str = "float32"
    rescore: int = 0
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    nlist: int | None = None  # inverted lists; None picks one from the corpus size when training
    nprobe: int | None = None  # lists visited per query; None picks nlist / 16
    spill: int = 0  # percent of vectors given a second list (index/spill.py)
    code_dims: int | None = None  # width the codes see (rabitq); None = the vectors' own
    mmap: bool = False  # search the checkpoint's codes in place (index/checkpoint.py)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputError(unknown_name_message("index strategy", self.strategy, list(STRATEGIES)))
        if self.codes not in CODES:
            raise InputError(unknown_name_message("code precision", self.codes, list(CODES)))
        if (self.strategy, self.codes) in UNSUPPORTED:
            strategies = " or ".join(f"'{s}'" for s in STRATEGIES if (s, self.codes) not in UNSUPPORTED)
            others = ", ".join(p for p in CODES if (self.strategy, p) not in UNSUPPORTED)
            raise InputError(
                f"{self.codes} codes work with strategy {strategies}, not '{self.strategy}'; "
                f"{self.strategy} takes {others}."
            )
        from nestvec.recipe.fields import check_part

        check_part("index", self)
        if self.code_dims is not None and self.codes != "rabitq":
            raise InputError(
                f"code_dims projects the vectors before RaBitQ coding: it needs codes 'rabitq', "
                f"got {self.codes}; drop code_dims or use codes='rabitq'."
            )
        if self.mmap and (self.strategy not in MAPPABLE or self.binary):
            raise InputError(
                f"mmap searches the saved codes of a flat or hnsw index over float32, float16, int8 or rabitq "
                f"codes in place, got {self.strategy} over {self.codes} codes; set mmap=false, or pick one of those."
            )
        if self.spill and (self.strategy != "ivf" or self.binary):
            raise InputError(
                f"spill gives vectors a second inverted list: it needs strategy 'ivf' with codes other than "
                f"binary, got {self.strategy} over {self.codes} codes; set spill=0 or change those."
            )

    @classmethod
    def make(
        cls, strategy: str = "flat", codes: str = "float32", *, rescore: int | None = None, **knobs: Any
    ) -> IndexSpec:
        """Defaults that depend on the precision: codes below float32 rescore the top k × 4."""
        if rescore is None:
            rescore = 0 if codes == "float32" else 4
        return cls(strategy, codes, rescore, **knobs)

    @property
    def keeps_exact(self) -> bool:
        """Whether float vectors live beside the codes (rescoring, exact scans of filtered subsets)."""
        return self.codes != "float32" or self.strategy == "ivf"

    @property
    def rescores(self) -> bool:
        return self.rescore > 0 and self.codes != "float32"

    @property
    def binary(self) -> bool:
        return self.codes == "binary"

    def train_at(self) -> int:
        """Vectors to gather before codes can be trained (kept as exact float rows until then)."""
        if self.strategy == "ivf":
            return max(10_000, 39 * (self.nlist or 0))
        return 1_000 if self.codes in ("int8", "rabitq") else 0

    def lists_for(self, n: int) -> int:
        if self.nlist is not None:
            return self.nlist
        return int(min(max(16, n // 39), max(16, 4 * math.sqrt(n)), 65_536))

    def bytes_per_code(self, dim: int) -> int:
        bits = math.ceil((self.code_dims or dim) / 8)
        return {"float32": 4 * dim, "float16": 2 * dim, "int8": dim, "binary": bits, "rabitq": bits + 8}[self.codes]

    def bytes_per_vector(self, dim: int) -> float:
        """RAM of one vector's code plus its graph links or list id (not the file-backed float copy)."""
        code = self.bytes_per_code(dim)
        extra = {"flat": 0, "hnsw": 2 * self.hnsw_m * 4 * 1.05, "ivf": 8}[self.strategy]
        entries = 1 + self.spill / 100  # second list entries: code and id again
        return (code + extra) * entries + 9  # + label (8) and liveness (1)

    def describe(self) -> str:
        text = self.strategy if self.codes == "float32" else f"{self.strategy}+{self.codes}"
        text += f"@{self.code_dims}d" if self.code_dims else ""
        text += f" spill {self.spill}%" if self.spill else ""
        text += " mapped" if self.mmap else ""
        return f"{text} rescore×{self.rescore}" if self.rescores else text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        known = {k: data[k] for k in ("strategy", "codes", *_TUNABLE) if k in data}
        if "precision" in data and "codes" not in data:  # recipes written by nestvec 0.1
            known["codes"] = data["precision"]
        return cls(**known)
