"""Distilling an encoder into a smaller one: the student learns the teacher's vectors (MSE).

This is how sentence-transformers' model-distillation recipe shrinks a model (Reimers & Gurevych,
2020, "Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation"): cut
layers from the teacher, then regress the student's vectors on the teacher's over unlabeled text.
Unlabeled text is plentiful where labels are not, so a 3-layer student can learn from far more
sentences than the STS pairs that trained its teacher. A Matryoshka teacher's prefixes are
learned along with the rest: MSE over every coordinate is MSE over every prefix. The
`similarity` loss takes the same labels to teach the teacher's similarities to each prefix
(train/similarity.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nestvec.errors import InputError
from nestvec.train.data import TrainingData


def with_teacher(
    data: TrainingData, teacher: str | Path | None, *, loss: str = "mse", batch_size: int = 64
) -> TrainingData:
    """`data`'s texts with the teacher's vectors as labels, the columns MSELoss (and the similarity loss) take."""
    from nestvec.encoders import load_encoder

    if teacher is None:
        raise InputError(f"The {loss} loss learns from a teacher's vectors; name the teacher (--teacher MODEL).")
    if data.kind != "text":
        raise InputError(f"The {loss} loss trains on text data; {data.path} was read as {data.kind}.")
    texts = data.columns["anchor"]
    vectors = load_encoder(str(teacher)).encode(texts, batch_size=batch_size, progress=False)
    return replace(data, columns={"text": texts, "label": list(vectors)}, teacher=str(teacher))
