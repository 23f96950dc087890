"""The one training loop both hash embeddings and static refinement use.

A table (torch EmbeddingBag, rows summed per text) is trained so each text's summed vector
points where its target does: loss 1 - cosine, so the sum's length never matters and a sum is
as good as a mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nestvec.extras import require


def fit_bags(
    table: Any,
    optimizer: Any,
    bags: Sequence[np.ndarray],
    targets: np.ndarray,
    *,
    target_of: np.ndarray | None = None,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """Train `table` on the row ids of each text (`bags`); `target_of[i]` is bag i's row of `targets`
    (the identity when None). Texts without ids are skipped. Returns the last batch's loss."""
    torch = require("torch", "transformer", "Training")

    goal = torch.nn.functional.normalize(torch.from_numpy(np.asarray(targets, dtype=np.float32)), dim=1)
    target_of = np.arange(len(bags)) if target_of is None else target_of
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(bags)), max(1, len(bags) // batch_size)):
            kept = [int(i) for i in batch if len(bags[i])]
            ids = torch.from_numpy(np.concatenate([bags[i] for i in kept]).astype(np.int64))
            offsets = torch.from_numpy(np.cumsum([0] + [len(bags[i]) for i in kept[:-1]]))
            predicted = table(ids, offsets)
            loss = (1 - torch.nn.functional.cosine_similarity(predicted, goal[target_of[kept]], dim=1)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return float(loss.detach())
