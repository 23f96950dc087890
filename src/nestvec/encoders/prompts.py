"""Query and document prompts: the text some models want before what they embed.

e5 wants "query: " before a query and "passage: " before a passage, bge an instruction before a
retrieval query only. A sentence-transformers folder names its prompts in
config_sentence_transformers.json (`prompts`, `default_prompt_name`); a recipe may set its own
(`query_prompt`, `document_prompt`). Queries get the query prompt; documents, the document prompt;
symmetric tasks (STS, pair classification, clustering), whose two sides are alike, the query
prompt on both sides, as e5 and the instruction-tuned models ask.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.encoders.base import Encoder, Wrapper, check_texts
from nestvec.errors import ModelError

SIDES = ("query", "document")
# the names sentence-transformers models use for each side's prompt, in order of preference
_NAMES = {"query": ("query",), "document": ("document", "passage", "corpus", "doc")}


def folder_prompts(folder: Path) -> dict[str, str]:
    """The prompt of each side that a sentence-transformers folder declares (sides it does not name are left out)."""
    path = folder / "config_sentence_transformers.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc}).") from exc
    prompts = config.get("prompts") or {}
    default = config.get("default_prompt_name")
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise ModelError(f"{path}: 'prompts' should map names to strings, found {prompts!r}.")
    found: dict[str, str] = {}
    for side, names in _NAMES.items():
        name = next((n for n in names if n in prompts), default)
        if name is not None and prompts.get(name):
            found[side] = prompts[name]
    return found


def model_prompts(encoder: Encoder) -> dict[str, str]:
    """The prompts an encoder's model folder declares; models without any have none."""
    prompts = getattr(encoder, "prompts", None)
    return dict(prompts) if isinstance(prompts, dict) else {}


class PromptedEncoder(Wrapper):
    """`inner` with `prompt` put before every text (its identity is the inner model's: the prompts
    are the recipe's, recorded there). Lengths are of the texts as given, against a window
    shortened by the prompt's tokens, so long-document windows still fit the model."""

    def __init__(self, inner: Encoder, prompt: str) -> None:
        super().__init__(inner)
        self.prompt = prompt
        extra = inner.token_counts([prompt])[0] - inner.special_tokens
        self.max_tokens = inner.max_tokens - max(0, extra)
        if self.max_tokens <= inner.special_tokens:
            raise ModelError(
                f"The prompt {prompt!r} takes {extra} of the model's {inner.max_tokens} tokens; "
                "choose a shorter prompt."
            )

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        check_texts(texts)
        return self.inner.encode([self.prompt + t for t in texts], batch_size=batch_size, progress=progress)

    def __getattr__(self, name: str) -> Any:  # threads, device and the like, from the model itself
        return getattr(self.inner, name)


def prompted(encoder: Encoder, prompt: str | None) -> Encoder:
    """`encoder` with `prompt` before every text, or `encoder` itself when there is no prompt."""
    return PromptedEncoder(encoder, prompt) if prompt else encoder
