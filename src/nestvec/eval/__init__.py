"""Measure any model and setting on STS, retrieval, pair classification, classification, clustering,
and the trade-offs of index settings (what `nestvec plan` shows)."""

from nestvec.eval.diagnostics import Diagnostics, diagnose
from nestvec.eval.retrieval import evaluate_retrieval
from nestvec.eval.setting import Setting
from nestvec.eval.tasks import (
    TASKS,
    TaskResult,
    evaluate_classification,
    evaluate_clustering,
    evaluate_pairs,
    evaluate_sts,
)
from nestvec.eval.tradeoffs import Measurement, candidates, measure_all
from nestvec.eval.workload import Workload, from_beir, from_collection

TASKS["retrieval"] = evaluate_retrieval

__all__ = [
    "TASKS",
    "Diagnostics",
    "Measurement",
    "Setting",
    "TaskResult",
    "Workload",
    "candidates",
    "diagnose",
    "evaluate_classification",
    "evaluate_clustering",
    "evaluate_pairs",
    "evaluate_retrieval",
    "evaluate_sts",
    "from_beir",
    "from_collection",
    "measure_all",
]
