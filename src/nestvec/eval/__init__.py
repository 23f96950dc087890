"""Measure any model and setting on STS, retrieval, pair classification, classification, clustering."""

from nestvec.eval.diagnostics import Diagnostics, diagnose
from nestvec.eval.retrieval import evaluate_retrieval
from nestvec.eval.tasks import (
    TASKS,
    Setting,
    TaskResult,
    evaluate_classification,
    evaluate_clustering,
    evaluate_pairs,
    evaluate_sts,
)

TASKS["retrieval"] = evaluate_retrieval

__all__ = [
    "TASKS",
    "Diagnostics",
    "Setting",
    "TaskResult",
    "diagnose",
    "evaluate_classification",
    "evaluate_clustering",
    "evaluate_pairs",
    "evaluate_retrieval",
    "evaluate_sts",
]
