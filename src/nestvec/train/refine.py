"""Refine a distilled static model on unlabeled text (as Model2Vec's tokenlearn does).

The teacher embeds the texts; its vectors are reduced by PCA to the static model's width. The
static model's space (a PCA of token vectors) is not that one, so a least-squares linear map
from the model's text vectors to the reduced teacher vectors is folded into the token table
first (a mean is linear, so the fold is exact); then the table is trained so each text's mean
token vector points where the reduced teacher vector does (loss 1 - cosine). The result is a new static
model folder with the same tokenizer; inference is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nestvec.encoders import load_encoder
from nestvec.encoders.static import StaticEncoder, save_static
from nestvec.errors import InputError
from nestvec.extras import require
from nestvec.files import new_folder, without_header
from nestvec.train.fit import fit_bags
from nestvec.transforms.reduce import normalize


@dataclass(frozen=True)
class RefineReport:
    path: str
    texts: int
    epochs: int
    final_loss: float
    seconds: float


def refine(
    model: str | Path,
    texts: Sequence[str],
    output: str | Path,
    *,
    teacher: str | Path = "minilm",
    targets: np.ndarray | None = None,
    epochs: int = 1,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> RefineReport:
    """Train `model`'s table towards `teacher`'s vectors of `texts` (or the given `targets`)."""
    torch = require("torch", "transformer", "Training")
    PCA = require("sklearn.decomposition", "eval", "Distillation (PCA)").PCA

    start = time.perf_counter()
    target = new_folder(output)
    static = StaticEncoder(Path(model))
    if targets is None:
        targets = load_encoder(teacher).encode(list(texts), batch_size=64)
    if len(targets) != len(texts) or len(texts) < static.dim:
        raise InputError(f"refine needs one target per text and at least {static.dim} texts, got {len(texts)}.")
    goal = np.asarray(targets, dtype=np.float32)
    if goal.shape[1] != static.dim:
        goal = PCA(n_components=static.dim, random_state=seed).fit_transform(goal).astype(np.float32)
    ids = static._ids(list(texts))
    start_vectors = static._pool_chunk(ids)  # what encode() gives, from the ids already at hand
    unit = normalize(goal)
    mapping = np.linalg.lstsq(start_vectors, unit, rcond=None)[0].astype(np.float32)
    torch.manual_seed(seed)
    folded = torch.from_numpy(static.table.floats() @ mapping)
    bag = torch.nn.EmbeddingBag.from_pretrained(folded, freeze=False, mode="sum")
    optimizer = torch.optim.Adam(bag.parameters(), lr=learning_rate)
    bags = [np.asarray(i, dtype=np.int64) for i in ids]
    rng = np.random.default_rng(seed)
    loss = fit_bags(bag, optimizer, bags, goal, epochs=epochs, batch_size=batch_size, rng=rng)
    config = without_header(static.config)
    config |= {"refined_on": len(texts), "refine_epochs": epochs, "name": f"{static.name} (refined)"}
    table = bag.weight.detach().numpy()
    save_static(
        target, tokenizer=static.tokenizer, table=table, storage=str(config.get("storage", "float32")), config=config
    )
    return RefineReport(str(target), len(texts), epochs, loss, time.perf_counter() - start)
