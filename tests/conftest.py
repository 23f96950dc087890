"""Shared fixtures. Everything runs on the real bundled MiniLM model; nothing is mocked."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
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


# A few texts the tiny llama's tokenizer is trained on beside STS-B's sentences.
LLAMA_TEXTS = [
    "A man is playing a guitar.",
    "Vectors",
    "The quick brown fox jumps over the lazy dog near the quiet river bank at dawn.",
    "Two dogs run on the beach, chasing a ball thrown by a child.",
]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A sentence-transformers folder for fast training tests: MiniLM's first two layers."""
    st = pytest.importorskip("sentence_transformers", reason="training needs the 'train' extra")
    model = st.SentenceTransformer(str(minilm_dir), device="cpu")
    model[0].auto_model.encoder.layer = model[0].auto_model.encoder.layer[:2]
    model[0].auto_model.config.num_hidden_layers = 2
    path = tmp_path_factory.mktemp("tiny") / "minilm-2"
    model.save(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A causal LM folder: a llama of 4 layers, 32 wide, random weights, a BPE tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>", "<eos>"])
    tokenizer.train_from_iterator(sts_sentences()[:2000] + LLAMA_TEXTS, trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=1,
        eos_token_id=2, bos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder


def kill_at_checkpoint(process: subprocess.Popen[str], checkpoint: Path) -> None:
    """SIGKILL a training run as soon as `checkpoint` is whole."""
    from nestvec.train.finetune import checkpoint_is_whole

    deadline = time.monotonic() + 600
    while not checkpoint_is_whole(checkpoint) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
