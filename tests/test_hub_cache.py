"""Models by Hugging Face id from a local hub cache (the layout huggingface_hub writes), offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nestvec
from tests.conftest import model_variant

REVISION = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache(root: Path, repo: str, minilm_dir: Path) -> Path:
    """`root` laid out as huggingface_hub leaves it after a download of `repo`: refs/main names a
    snapshot whose files are links (to MiniLM's installed files here, to blobs in a real cache)."""
    folder = root / "hub" / f"models--{repo.replace('/', '--')}"
    model_variant(minilm_dir, folder / "snapshots" / REVISION)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(REVISION)
    return folder


def test_a_model_resolves_by_id_from_the_hub_cache(
    tmp_path: Path, minilm_dir: Path, encoder: nestvec.Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hub_cache(tmp_path / "hf", "acme/mini-l6", minilm_dir)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    cached = nestvec.load_encoder("acme/mini-l6")
    assert cached.identity.name == "acme/mini-l6"
    texts = ["a cached model", "found by its id"]
    assert np.allclose(cached.encode(texts), encoder.encode(texts), atol=1e-6)
    pinned = nestvec.load_encoder(f"acme/mini-l6@{REVISION}")  # a revision the cache holds
    assert pinned.identity.weights_sha256 == cached.identity.weights_sha256
    collection = nestvec.Collection.create(tmp_path / "c", model="acme/mini-l6")
    collection.add([nestvec.Document("d1", "a cached model")])
    assert collection.search("cached model", k=1)[0].id == "d1"
    collection.close()


def test_the_bundled_model_answers_to_its_hub_id_before_any_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    assert nestvec.load_encoder("sentence-transformers/all-MiniLM-L6-v2").identity.name == (
        "sentence-transformers/all-MiniLM-L6-v2"
    )


def test_a_missing_id_names_every_place_looked(tmp_path: Path, minilm_dir: Path) -> None:
    _hub_cache(tmp_path / "hf", "acme/mini-l6", minilm_dir)
    (tmp_path / "in.txt").write_text("text\n")
    env = {"HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "nestvec.cli.main", "embed", "in.txt", "o.npy", "--model", "acme/other", "--json"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    message = json.loads(done.stderr)["error"]
    assert "acme/other" in message and str(tmp_path / "hf" / "hub") in message
    assert "bundled model name" in message and "never downloads" in message
    assert not (tmp_path / "o.npy").exists()
