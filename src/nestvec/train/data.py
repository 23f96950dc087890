"""Training files, read with nestvec's readers into the columns sentence-transformers' losses take.

Three shapes, each from .jsonl, .csv/.tsv or .parquet (and .txt for plain text):
- pairs / triplets: `anchor`, `positive` and optional `negative` (or `negative_1`, `negative_2`…)
  for in-batch-negative losses;
- scored pairs: STS rows `text1, text2, score` (scores scaled from `score_range` to 0–1) for CoSENT;
- text: one text per record, paired with itself, for unsupervised SimCSE (dropout makes the views).
A bad record is an InputFileError with file:line, raised before anything trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nestvec.errors import InputFileError, MissingExtraError
from nestvec.files import hash_file
from nestvec.io.readers import RecordReader
from nestvec.registry import unknown_name_message

KINDS = ("pairs", "scored", "text")


@dataclass(frozen=True)
class TrainingData:
    """Columns of texts (and scores) ready for a loss; `record()` is what the model's config keeps."""

    kind: str
    path: Path
    columns: dict[str, list[Any]]
    mined: dict[str, Any] | None = None  # how hard negatives were mined, when they were
    teacher: str | None = None  # the model whose vectors are the labels (the mse loss)

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values())))

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file": str(self.path),
            "sha256": hash_file(self.path).hexdigest(),
            "rows": self.rows,
            **({"teacher": self.teacher} if self.teacher else {}),
        }

    def dataset(self) -> Any:
        try:
            from datasets import Dataset
        except ImportError as exc:
            raise MissingExtraError("datasets", "train", "nestvec train") from exc
        return Dataset.from_dict(self.columns)


def read_training(path: str | Path, kind: str, *, score_range: tuple[float, float] = (0.0, 5.0)) -> TrainingData:
    """Read `path` as `kind` (pairs, scored or text)."""
    if kind not in KINDS:
        raise InputFileError(Path(path), None, unknown_name_message("training data kind", kind, list(KINDS)))
    path = Path(path)
    if kind == "scored":
        return _scored(path, score_range)
    if kind == "text":
        return _texts(path)
    return _pairs(path)


def _pairs(path: Path) -> TrainingData:
    reader = RecordReader(path, id_field=None, text_fields=("anchor",))
    anchors: list[str] = []
    positives: list[str] = []
    negatives: dict[str, list[str]] = {}
    for record in reader:
        positive = record.metadata.get("positive")
        if not isinstance(positive, str) or not positive.strip():
            raise InputFileError(path, record.line, "missing or empty 'positive' (each row needs anchor and positive).")
        found = _negatives(path, record.line, record.metadata)
        if anchors and len(found) != len(negatives):
            raise InputFileError(
                path,
                record.line,
                f"{len(found)} negatives where the first row had {len(negatives)}; give every row as many.",
            )
        anchors.append(record.text)
        positives.append(positive)
        for n, text in enumerate(found, start=1):
            negatives.setdefault(f"negative_{n}", []).append(text)
    if not anchors:
        raise InputFileError(path, None, "no training rows.")
    return TrainingData("pairs", path, {"anchor": anchors, "positive": positives, **negatives})


def _negatives(path: Path, line: int, fields: dict[str, Any]) -> list[str]:
    raw = fields.get("negatives", fields.get("negative"))
    values = raw if isinstance(raw, list) else [] if raw is None else [raw]
    values += [fields[k] for k in sorted(fields) if k.startswith("negative_")]
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise InputFileError(path, line, "every negative must be a non-empty text.")
    return values


def _scored(path: Path, score_range: tuple[float, float]) -> TrainingData:
    from nestvec.eval.readers import read_sts

    pairs = read_sts(path, score_range=score_range)
    low, high = score_range
    scores = [(s - low) / (high - low) for s in pairs.values]
    return TrainingData("scored", path, {"sentence1": pairs.texts1, "sentence2": pairs.texts2, "score": scores})


def _texts(path: Path) -> TrainingData:
    texts = [record.text for record in RecordReader(path, id_field=None, skip_empty=True)]
    if not texts:
        raise InputFileError(path, None, "no texts.")
    return TrainingData("text", path, {"anchor": texts, "positive": list(texts)})
