"""Rerankers: cross-encoders that re-score a search's candidates (`load_reranker`, `Reranker`)."""

from __future__ import annotations

from nestvec.rerank.hits import DEFAULT_DEPTH, rerank_hits
from nestvec.rerank.model import BACKENDS, Ranked, Reranker, load_reranker

__all__ = ["BACKENDS", "DEFAULT_DEPTH", "Ranked", "Reranker", "load_reranker", "rerank_hits"]
