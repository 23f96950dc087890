"""Hash embeddings: a fixed-size table of hashed word features, with an optional typo-mending lexicon."""

from nestvec.encoders.hashed.lexicon import Lexicon
from nestvec.encoders.hashed.model import KIND, HashEncoder, HashSpec, save_hashed, words

__all__ = ["KIND", "HashEncoder", "HashSpec", "Lexicon", "save_hashed", "words"]
