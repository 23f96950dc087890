"""The training losses, by name: sentence-transformers' implementations, wrapped for nesting.

Base losses (each takes one data shape):
- `mnrl`: in-batch negatives (MultipleNegativesRankingLoss) over pairs/triplets;
- `cached-mnrl`: the same with GradCache (CachedMultipleNegativesRankingLoss): large batches in
  the memory of a mini-batch;
- `cosent`: CoSENT over scored pairs;
- `simcse`: unsupervised SimCSE, in-batch negatives over (text, text) where dropout makes the
  two views differ (Gao et al., 2021);
- `mse`: distillation, the student's vectors regressed on a teacher's over text (train/teacher.py);
- `listwise`: distillation of a teacher's scores over each query's ranked passages: the KL
  divergence between the teacher's and the student's softmax over them (train/listwise.py);
- `similarity`: distillation of the teacher's in-batch cosine similarities into every prefix of
  the dims ladder (train/similarity.py), beside a supervised set to keep what it does not teach.
Nesting: `dims` wraps the loss in MatryoshkaLoss over that ladder (Kusupati et al., 2022);
`two_d` in Matryoshka2dLoss, which also trains shallow layers (Li et al., 2024, 2D Matryoshka);
`starbucks` in StarbucksLoss, a fixed ladder of (layers, dims) pairs (Zhuang et al., 2024).
"""

from __future__ import annotations

from typing import Any

from nestvec.errors import InputError
from nestvec.registry import unknown_name_message

DATA_FOR = {
    "mnrl": "pairs", "cached-mnrl": "pairs", "cosent": "scored", "simcse": "text", "mse": "text", "similarity": "text",
    "listwise": "ranked",
}  # fmt: skip
LOSSES = tuple(DATA_FOR)
TAUGHT = ("mse", "similarity")  # the losses whose labels are a teacher's vectors
IN_BATCH = ("mnrl", "cached-mnrl", "simcse")  # the losses whose negatives are the batch's other texts


def build_loss(
    model: Any,
    name: str,
    *,
    dims: tuple[int, ...] = (),
    two_d: bool = False,
    starbucks: bool = False,
    pairs: tuple[tuple[int, int], ...] = (),
    mini_batch: int = 16,
) -> Any:
    """The loss `name` for `model`, nested over `dims` (and layers, with `two_d` or `starbucks`;
    `pairs` gives the Starbucks (layers, dims) ladder instead of one spread over the layers)."""
    from sentence_transformers.sentence_transformer import losses

    if name not in DATA_FOR:
        raise InputError(unknown_name_message("loss", name, list(LOSSES)))
    base: Any
    if name == "mse":  # never nested: its labels are whole vectors, and MSE over them is MSE over every prefix
        return losses.MSELoss(model)
    if name == "similarity":  # nested by itself: the teacher's vectors are its labels, every prefix compared to them
        from nestvec.train.similarity import PrefixSimilarityLoss

        return PrefixSimilarityLoss(model, check_ladder(dims, model.get_embedding_dimension()) if dims else ())
    if name == "cosent":
        base = losses.CoSENTLoss(model)
    elif name == "listwise":
        from nestvec.train.listwise import ListwiseLoss

        base = ListwiseLoss(model)
    elif name == "cached-mnrl":
        base = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch)
    else:  # mnrl and simcse: the same objective; simcse's pairs are a text and itself
        base = losses.MultipleNegativesRankingLoss(model)
    if pairs:
        from nestvec.train.starbucks import StarbucksLoss

        return StarbucksLoss(model, base, list(pairs))
    if (two_d or starbucks) and not dims:
        raise InputError("2D Matryoshka and Starbucks need a dims ladder, e.g. dims 384,256,128,64.")
    if not dims:
        return base
    ladder = check_ladder(dims, model.get_embedding_dimension())
    if starbucks:
        from nestvec.train.starbucks import StarbucksLoss, default_ladder

        layers = model[0].auto_model.config.num_hidden_layers
        return StarbucksLoss(model, base, default_ladder(layers, ladder))
    if two_d:
        return losses.Matryoshka2dLoss(model, base, list(ladder))
    return losses.MatryoshkaLoss(model, base, list(ladder))


def check_ladder(dims: tuple[int, ...], width: int) -> tuple[int, ...]:
    """Dims largest first, each within the model's width."""
    ladder = tuple(sorted(set(dims), reverse=True))
    if not ladder or ladder[-1] < 1 or ladder[0] > width:
        raise InputError(f"Matryoshka dims must lie within 1–{width} (the model's width), got {list(dims)}.")
    return ladder
