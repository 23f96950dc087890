"""How a decoder LLM's token states become one sentence vector: the methods, declared as data.

A causal model's token i has seen tokens 0..i only, so its states are not a sentence embedding
by themselves. Each method is a template around the text and the tokens it pools:
- `mean`: the average over the text's tokens;
- `last`: the last token's state, the only one that has seen the whole text (NV-Embed,
  e5-mistral pool this way, with an instruction before the text);
- `prompteol`: 'This sentence: "…" means in one word: "' and the last token (Jiang et al.,
  2023, "Scaling Sentence Embeddings with Large Language Models"): the model is asked to compress
  the sentence into its next word;
- `echo`: the text twice, averaged over the second copy only, whose tokens have all seen the
  whole text once (Springer et al., 2024, "Repetition Improves Language Model Embeddings");
- `prepend`: PromptEOL with a placeholder token before the sentence whose state, at the input
  of each of the early layers, is replaced by the last token's state from the layer below, so
  that every sentence token can attend to a summary of the whole sentence (Fu et al., 2024,
  "Token Prepending: A Training-Free Approach for Eliciting Better Sentence Embeddings from LLMs").
"""

from __future__ import annotations

from dataclasses import dataclass

from nestvec.errors import InputError
from nestvec.registry import unknown_name_message

TEXT = "{text}"
PLACEHOLDER = "{prepended}"


@dataclass(frozen=True)
class Method:
    name: str
    template: str  # holds TEXT once (twice for echo); PLACEHOLDER for prepend
    pool: str  # "mean" over the pooled copy of the text, or "last" token
    pooled_copy: int = 0  # which occurrence of TEXT the mean runs over (echo: the second)

    @property
    def prepends(self) -> bool:
        return PLACEHOLDER in self.template

    def pieces(self) -> list[str]:
        """The template cut into literal text and the markers TEXT / PLACEHOLDER, in order."""
        out: list[str] = []
        rest = self.template
        while rest:
            cuts = [(rest.find(m), m) for m in (TEXT, PLACEHOLDER) if m in rest]
            if not cuts:
                out.append(rest)
                break
            at, marker = min(cuts)
            if at:
                out.append(rest[:at])
            out.append(marker)
            rest = rest[at + len(marker) :]
        return out


PROMPTEOL = 'This sentence: "{text}" means in one word: "'
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("mean", TEXT, "mean"),
        Method("last", TEXT, "last"),
        Method("prompteol", PROMPTEOL, "last"),
        Method("echo", "Rewrite the sentence: {text}\nRewritten sentence: {text}", "mean", pooled_copy=1),
        Method("prepend", PROMPTEOL.replace(TEXT, PLACEHOLDER + TEXT), "last"),
    )
}
DEFAULT_METHOD = "last"


def method(name: str) -> Method:
    if name not in METHODS:
        raise InputError(unknown_name_message("pooling", name, list(METHODS)))
    return METHODS[name]


def check_prompt(prompt: str, *, what: str) -> None:
    """A template of one's own must say where the text goes."""
    if TEXT not in prompt:
        raise InputError(
            f"{what} {prompt!r} has no {TEXT} placeholder, so the text would not be in it. "
            f"Write where the text goes, e.g. 'Query: {TEXT}' or 'This sentence: \"{TEXT}\" means in one word: \"'."
        )
