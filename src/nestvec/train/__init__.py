"""Training: static distillation (with an optional corpus vocabulary) and refinement, hash embeddings."""

from nestvec.train.distill import DistillReport, distill
from nestvec.train.refine import RefineReport, refine
from nestvec.train.vocabulary import corpus_words

__all__ = ["DistillReport", "RefineReport", "corpus_words", "distill", "refine"]
