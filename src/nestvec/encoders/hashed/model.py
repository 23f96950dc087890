"""Hash embeddings (Bloom embeddings, as spaCy's MultiHashEmbed): no vocabulary, fixed memory.

Each word contributes features — its lowercased form, 3-character prefix and suffix, shape
("Xxxx", "dd") and character trigrams of "<word>" — and each feature is hashed with several
seeds into one table of `rows` vectors. A word is the sum of its features' rows; a text is the
mean of its words, L2-normalized. Memory is rows × dim floats whatever the vocabulary; unseen
words and typos still share most features with the words they resemble; a model saved with a
lexicon (encoders/lexicon.py) also mends one-letter typos, chosen by context, before hashing. The
table is trained by distillation (nestvec.train.hashed, torch); inference needs numpy only.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from nestvec.encoders.base import ModelIdentity, check_texts
from nestvec.encoders.hashed.lexicon import Lexicon
from nestvec.errors import InputError
from nestvec.files import config_header, read_config, write_json_atomic
from nestvec.registry import unknown_name_message

KIND = "hashed"  # config.json's kind (nestvec.hashed) and the identity's
OLD_KINDS = ("hash-model",)  # what nestvec 0.1 wrote
TABLE = "table.safetensors"
_WORD = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]", re.UNICODE)


FEATURES = ("norm", "prefix", "suffix", "shape", "trigrams")


@dataclass(frozen=True)
class HashSpec:
    rows: int = 1 << 17
    dim: int = 256
    seeds: int = 2
    features: tuple[str, ...] = FEATURES

    def __post_init__(self) -> None:
        if self.rows < 16 or self.dim < 1 or not 1 <= self.seeds <= 8:
            raise InputError(f"HashSpec needs rows ≥ 16, dim ≥ 1 and 1-8 seeds, got {self}.")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown or not self.features:
            raise InputError(unknown_name_message("hash feature", (unknown or [""])[0], list(FEATURES)))
        object.__setattr__(self, "features", tuple(self.features))

    def ids(self, word: str) -> tuple[int, ...]:
        return _features(word, self.rows, self.seeds, self.features)


def _shape(word: str) -> str:
    shape = re.sub(r"[A-Z]", "X", re.sub(r"[a-z]", "x", re.sub(r"[0-9]", "d", word)))
    return re.sub(r"(.)\1{3,}", r"\1\1\1\1", shape)  # "Xxxxxxxx" -> "Xxxxx": length stops counting after 4


@lru_cache(maxsize=1 << 18)
def _features(word: str, rows: int, seeds: int, features: tuple[str, ...]) -> tuple[int, ...]:
    lower = word.lower()
    marked = f"<{lower}>"
    named = {
        "norm": f"N:{lower}",
        "prefix": f"P:{lower[:3]}",
        "suffix": f"S:{lower[-3:]}",
        "shape": f"H:{_shape(word)}",
    }
    keys = [named[f] for f in features if f in named]
    if "trigrams" in features:
        keys += [f"T:{marked[i : i + 3]}" for i in range(len(marked) - 2)]
    return tuple(zlib.crc32(key.encode("utf-8"), seed * 0x9E3779B1) % rows for key in keys for seed in range(seeds))


def words(text: str) -> list[str]:
    return _WORD.findall(text)


class HashEncoder:
    """A trained hash-embedding table. Satisfies the Encoder protocol."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        config = read_config(folder, KIND, aliases=OLD_KINDS)
        self.spec = HashSpec(**config["spec"])  # __post_init__ turns the JSON list of features back into a tuple
        self.table = load_file(str(folder / TABLE))["table"].astype(np.float32)
        if self.table.shape != (self.spec.rows, self.spec.dim):
            raise InputError(f"{folder}: table shape {self.table.shape} does not match {self.spec}.")
        self.folder, self.config = folder, config
        self.name, self.source = str(config.get("name", folder.name)), str(folder)
        self.dim, self.max_tokens = self.spec.dim, 1 << 20
        self._digest = str(config.get("table_sha256", ""))
        self.lexicon = Lexicon.load(folder)

    @property
    def identity(self) -> ModelIdentity:
        details = {**asdict(self.spec), "lexicon_sha256": self.lexicon.digest if self.lexicon else None}
        return ModelIdentity(KIND, self.name, self._digest, self.dim, self.max_tokens, True, details)

    @property
    def special_tokens(self) -> int:
        return 0

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(words(t)) for t in texts]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]

    def encode(self, texts: Sequence[str], *, batch_size: int = 1024, progress: bool | None = None) -> np.ndarray:
        check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            found = [words(text) for text in texts[start : start + batch_size]]
            if self.lexicon is not None:  # decided for the whole batch at once
                found = self.lexicon.mend_many(found)
            for i, tokens in enumerate(found, start):
                if tokens:
                    ids = np.fromiter(chain.from_iterable(self.spec.ids(w) for w in tokens), np.int64)
                    total = self.table[ids].sum(axis=0)
                    norm = np.linalg.norm(total)
                    out[i] = total / norm if norm > 0 else 0.0  # the mean's direction: the count cancels out
        return out


def save_hashed(folder: Path, *, spec: HashSpec, table: np.ndarray, config: dict[str, Any]) -> Path:
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    data = np.ascontiguousarray(table, dtype=np.float32)
    save_file({"table": data}, str(folder / TABLE))
    digest = hashlib.sha256(data.tobytes()).hexdigest()
    write_json_atomic(
        folder / "config.json", {**config_header(KIND), **config, "spec": asdict(spec), "table_sha256": digest}
    )
    return folder
