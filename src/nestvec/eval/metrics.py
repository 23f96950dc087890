"""Evaluation metrics. Retrieval metrics follow trec_eval's definitions (graded, linear gains)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from nestvec.extras import require

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]
RETRIEVAL_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100")


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Documents best first; ties broken by document id, descending, as trec_eval does."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def ndcg_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    gains = [max(judged.get(doc, 0), 0) for doc in ranking[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains) if g > 0)
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def _relevant(judged: Mapping[str, int]) -> set[str]:
    return {doc for doc, grade in judged.items() if grade > 0}


def recall_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    relevant = _relevant(judged)
    return len(relevant.intersection(ranking[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    relevant = _relevant(judged)
    return next((1.0 / (i + 1) for i, doc in enumerate(ranking[:k]) if doc in relevant), 0.0)


def map_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    relevant = _relevant(judged)
    if not relevant:
        return 0.0
    found, total = 0, 0.0
    for i, doc in enumerate(ranking[:k]):
        if doc in relevant:
            found += 1
            total += found / (i + 1)
    return total / len(relevant)


_PER_QUERY = {"ndcg": ndcg_at, "recall": recall_at, "mrr": mrr_at, "map": map_at}


def per_query(run: Run, qrels: Qrels, metrics: tuple[str, ...] = RETRIEVAL_METRICS) -> dict[str, dict[str, float]]:
    """Every metric for every judged query (a query missing from the run scores 0)."""
    out: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        ranking = ranked(run.get(qid, {}))
        out[qid] = {}
        for name in metrics:
            kind, cut = name.split("@")
            out[qid][name] = _PER_QUERY[kind](ranking, judged, int(cut))
    return out


def retrieval_scores(run: Run, qrels: Qrels, metrics: tuple[str, ...] = RETRIEVAL_METRICS) -> dict[str, float]:
    """Mean over judged queries, ×100 as in MTEB and BEIR reports."""
    table = per_query(run, qrels, metrics)
    return {name: 100.0 * float(np.mean([row[name] for row in table.values()])) for name in metrics}


def correlations(predicted: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    stats = require("scipy.stats", "eval", "STS correlations")
    pearsonr, spearmanr = stats.pearsonr, stats.spearmanr

    return {
        "spearman": 100.0 * float(spearmanr(predicted, gold).statistic),
        "pearson": 100.0 * float(pearsonr(predicted, gold).statistic),
    }


def pair_classification(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Average precision, and the best F1 and accuracy over all thresholds on the similarity."""
    average_precision_score = require("sklearn.metrics", "eval", "Pair classification").average_precision_score

    order = np.argsort(-scores, kind="stable")
    sorted_labels = labels[order]
    positives = sorted_labels.sum()
    true_pos = np.cumsum(sorted_labels)
    predicted_pos = np.arange(1, len(scores) + 1)
    # A threshold may only fall between distinct scores.
    cut = np.r_[scores[order][1:] != scores[order][:-1], True]
    f1 = 2 * true_pos / (predicted_pos + positives)
    accuracy = (true_pos + (len(labels) - positives) - (predicted_pos - true_pos)) / len(labels)
    best_acc = max(float(accuracy[cut].max()), float(1 - positives / len(labels)))
    return {
        "ap": 100.0 * float(average_precision_score(labels, scores)),
        "best_f1": 100.0 * float(f1[cut].max()),
        "best_accuracy": 100.0 * best_acc,
    }
