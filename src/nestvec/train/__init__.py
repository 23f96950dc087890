"""Training: distillation of static models from transformer teachers."""

from nestvec.train.distill import DistillReport, distill

__all__ = ["DistillReport", "distill"]
