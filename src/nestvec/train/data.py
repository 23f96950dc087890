"""Training files, read with nestvec's readers into the columns sentence-transformers' losses take.

Four shapes, each from .jsonl, .csv/.tsv or .parquet (and .txt for plain text):
- pairs / triplets: `anchor`, `positive` and optional `negative` (or `negative_1`, `negative_2`…)
  for in-batch-negative losses;
- scored pairs: STS rows `text1, text2, score` (scores scaled from `score_range` to 0–1) for CoSENT;
- ranked lists: `anchor`, `passages` (a list) and `scores` (a teacher's score for each passage,
  as many in every row) for the listwise distillation loss (.jsonl or .parquet: the fields are lists);
- text: one text per record, paired with itself, for unsupervised SimCSE (dropout makes the views).
A bad record is an InputFileError with file:line, raised before anything trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nestvec.errors import InputFileError, MissingExtraError
from nestvec.files import hash_file
from nestvec.io.readers import RecordReader
from nestvec.registry import unknown_name_message

KINDS = ("pairs", "scored", "text", "ranked")


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
    """Read `path` as `kind` (pairs, scored, text or ranked)."""
    if kind not in KINDS:
        raise InputFileError(Path(path), None, unknown_name_message("training data kind", kind, list(KINDS)))
    path = Path(path)
    if kind == "scored":
        return _scored(path, score_range)
    if kind == "text":
        return _texts(path)
    if kind == "ranked":
        return _ranked(path)
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


def _ranked(path: Path) -> TrainingData:
    columns: dict[str, list[Any]] = {"anchor": []}
    labels: list[list[float]] = []
    for record in RecordReader(path, id_field=None, text_fields=("anchor",)):
        passages, scores = _ranked_row(path, record.line, record.metadata, len(labels[0]) if labels else 0)
        columns["anchor"].append(record.text)
        labels.append(scores)
        for n, text in enumerate(passages, start=1):
            columns.setdefault(f"passage_{n}", []).append(text)
    if not labels:
        raise InputFileError(path, None, "no training rows.")
    return TrainingData("ranked", path, {**columns, "label": labels})  # the texts in order, then the labels


def _ranked_row(path: Path, line: int, fields: dict[str, Any], width: int) -> tuple[list[str], list[float]]:
    """One row's passages and scores, checked against the first row's `width` (0: this is it)."""
    passages, scores = fields.get("passages"), fields.get("scores")
    if not isinstance(passages, list) or not all(isinstance(p, str) and p.strip() for p in passages):
        raise InputFileError(
            path,
            line,
            f"'passages' must be a list of non-empty texts (a JSONL or Parquet field: CSV holds no lists); "
            f"got {passages!r:.80}.",
        )
    if len(passages) < 2 or (width and len(passages) != width):
        expected = f"{width}, as the first row has" if width else "at least 2"
        raise InputFileError(path, line, f"{len(passages)} passages where {expected}; give every row as many.")
    numbers = isinstance(scores, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in scores
    )
    if not numbers or len(scores) != len(passages):  # type: ignore[arg-type]
        raise InputFileError(
            path,
            line,
            f"'scores' must be a list of {len(passages)} finite numbers, one per passage; got {scores!r:.80}.",
        )
    return passages, [float(v) for v in scores]  # type: ignore[union-attr]


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
