"""Shared fixtures. Everything runs on the real bundled MiniLM model; nothing is mocked."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

import nestvec
from nestvec.encoders import resolve_model

ROOT = Path(__file__).resolve().parent.parent
# Benchmark data shared beside the checkout; NESTVEC_SHARED_DATA points elsewhere.
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
PAPERS = ROOT / "examples" / "papers.jsonl"
STS_TEST = ROOT / "tests" / "data" / "sts" / "stsb-en-test.csv"  # copy of ../shared/data (CC BY-SA 4.0)
ARTIFACTS = ROOT / "test-artifacts"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def sts_sentences() -> list[str]:
    if not STS_TEST.exists():
        pytest.skip(f"{STS_TEST} is not present on this machine")
    with STS_TEST.open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return list(dict.fromkeys(s for row in rows for s in row[:2]))


def papers(n: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in PAPERS.open(encoding="utf-8")]
    return rows[:n] if n else rows


def paper_docs(n: int | None = None) -> list[nestvec.Document]:
    return [
        nestvec.Document(p["id"], f"{p['title']}\n{p['text']}", {"title": p["title"], "n": i})
        for i, p in enumerate(papers(n))
    ]


@pytest.fixture(scope="session")
def encoder() -> nestvec.Encoder:
    return nestvec.load_encoder("minilm")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return resolve_model("minilm")[1]


def model_variant(
    src: Path, dst: Path, *, pooling: dict[str, bool] | None = None, normalize: bool = True, dense: Path | None = None
) -> Path:
    """A sentence-transformers folder sharing MiniLM's weights but with other modules."""
    dst.mkdir(parents=True)
    for name in (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
        "sentence_bert_config.json",
        "model.safetensors",
    ):
        os.symlink(src / name, dst / name)
    (dst / "1_Pooling").mkdir()
    cfg = json.loads((src / "1_Pooling" / "config.json").read_text())
    cfg.update({k: False for k in cfg if k.startswith("pooling_mode")})
    cfg.update(pooling or {"pooling_mode_mean_tokens": True})
    (dst / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if dense is not None:
        shutil.copytree(dense, dst / "2_Dense")
        modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    if normalize:
        modules.append({"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"})
    (dst / "modules.json").write_text(json.dumps(modules))
    return dst


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
