"""Word vectors (word2vec, GloVe, fastText files) converted to a memory-mapped folder."""

from nestvec.encoders.wordvectors.model import KIND, WordVectors, convert

__all__ = ["KIND", "WordVectors", "convert"]
