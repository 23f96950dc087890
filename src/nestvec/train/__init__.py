"""Training: static distillation and refinement, hash embeddings."""

from nestvec.train.distill import DistillReport, distill
from nestvec.train.refine import RefineReport, refine

__all__ = ["DistillReport", "RefineReport", "distill", "refine"]
