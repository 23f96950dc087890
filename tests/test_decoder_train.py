"""`nestvec train` on a decoder LLM: a LoRA adapter trained with sentence-transformers' trainer
(on the tiny llama from conftest), saved as a folder that loads over its base."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.errors import InputError, ModelError
from nestvec.train.data import read_training
from nestvec.train.finetune import FinetuneConfig, finetune
from tests.conftest import LLAMA_TEXTS, ROOT, kill_at_checkpoint

pytest.importorskip("peft", reason="decoder adapters need the 'decoder' extra")
st = pytest.importorskip("sentence_transformers", reason="nestvec train needs the 'train' extra")

TRAIN = ROOT / "tests" / "data" / "sts" / "stsb-en-train-400.csv"
DEV = ROOT / "tests" / "data" / "sts" / "stsb-en-dev-200.csv"


def _config(**changes: object) -> FinetuneConfig:
    settings: dict = {"loss": "cosent", "max_steps": 12, "batch_size": 16, "save_steps": 4, "eval_steps": 4,
                      "learning_rate": 1e-3, "pooling": "prompteol", "progress": False, **changes}  # fmt: skip
    return FinetuneConfig(**settings)


@pytest.fixture(scope="module")
def adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    out = tmp_path_factory.mktemp("lora") / "tuned"
    report = finetune(tiny_llama, out, read_training(TRAIN, "scored"), config=_config(dev=DEV))
    assert report.steps == 12 and report.dev["sts-dev_spearman"] != 0
    return out, report.losses


def test_lora_lowers_the_loss_and_saves_only_the_adapter(adapter: tuple[Path, list[float]], tiny_llama: Path) -> None:
    out, losses = adapter
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "nestvec.decoder" and config["pooling"] == "prompteol" and config["layer"] is None
    assert config["training"]["steps"] == 12 and config["training"]["data"][0]["loss"] == "cosent"
    names = {p.name for p in out.iterdir()}  # peft adds its README
    assert {"config.json", "adapter_config.json", "adapter_model.safetensors"} <= names
    assert [p.name for p in out.glob("*.safetensors")] == ["adapter_model.safetensors"]  # the base is not copied
    assert (out / "adapter_model.safetensors").stat().st_size < (tiny_llama / "model.safetensors").stat().st_size


def test_the_adapter_loads_over_its_base_with_the_vectors_it_trained(
    adapter: tuple[Path, list[float]], tiny_llama: Path
) -> None:
    from nestvec.train.decoder import DecoderModule

    out = adapter[0]
    tuned = nestvec.load_encoder(out)  # the adapter merged into the base's weights
    base = nestvec.load_encoder(tiny_llama, pooling="prompteol")
    assert tuned.identity.details["pooling"] == "prompteol"  # the trained pooling is the default
    assert tuned.identity.weights_sha256 != base.identity.weights_sha256
    assert np.abs(tuned.encode(LLAMA_TEXTS) - base.encode(LLAMA_TEXTS)).max() > 1e-3
    trained = st.SentenceTransformer(modules=[DecoderModule(str(tiny_llama), "prompteol", adapter=str(out))])
    trained_vectors = trained.encode(LLAMA_TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(tuned.encode(LLAMA_TEXTS), trained_vectors, atol=1e-5)
    one_by_one = np.stack([tuned.encode([t])[0] for t in LLAMA_TEXTS])  # merged weights keep padding-invariance
    np.testing.assert_allclose(tuned.encode(LLAMA_TEXTS), one_by_one, atol=1e-5)


def test_a_collection_over_the_adapter_reopens_with_it(adapter: tuple[Path, list[float]], tmp_path: Path) -> None:
    out = adapter[0]
    with nestvec.Collection.create(tmp_path / "c", model=str(out)) as collection:
        collection.add([{"id": str(i), "text": t} for i, t in enumerate(LLAMA_TEXTS)])
    with nestvec.Collection.open(tmp_path / "c") as collection:
        assert collection.recipe.encoder.model == str(out)
        assert collection.search(LLAMA_TEXTS[2], k=1)[0].id == "2"


def test_adapter_refusals(adapter: tuple[Path, list[float]], tiny_llama: Path, tmp_path: Path) -> None:
    out = adapter[0]
    with pytest.raises(InputError, match="trained on layers=all"):
        nestvec.load_encoder(out, layers=2)
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("config.json", "adapter_config.json"):
        (moved / name).write_bytes((out / name).read_bytes())
    with pytest.raises(ModelError, match=r"without adapter_model\.safetensors"):
        nestvec.load_encoder(moved)
    other = tmp_path / "other-base"  # the same layout, other weights: the adapter must not load over it
    other.mkdir()
    for path in tiny_llama.iterdir():
        (other / path.name).write_bytes(path.read_bytes())
    from safetensors.torch import load_file, save_file

    weights = load_file(str(other / "model.safetensors"))
    save_file({k: v * 1.01 for k, v in weights.items()}, str(other / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    (moved / "adapter_model.safetensors").write_bytes((out / "adapter_model.safetensors").read_bytes())
    (moved / "config.json").write_text(json.dumps({**config, "base": str(other)}))
    with pytest.raises(ModelError, match="an adapter only fits the weights it was trained on"):
        nestvec.load_encoder(moved)
    with pytest.raises(InputError, match="--2d, --rotate cannot train a decoder model"):
        finetune(tiny_llama, tmp_path / "x", read_training(TRAIN, "scored"), config=_config(two_d=True, rotate=True))
    with pytest.raises(InputError, match="pooling and layers are trained for decoder models"):
        finetune("minilm", tmp_path / "y", read_training(TRAIN, "scored"), config=_config())
    assert not (tmp_path / "x").exists()


RUN = """
import sys
from pathlib import Path
from nestvec.train.data import read_training
from nestvec.train.finetune import FinetuneConfig, finetune
base, out, dev, train = sys.argv[1:]
config = FinetuneConfig(loss="cosent", max_steps=32, batch_size=16, save_steps=8, eval_steps=8, learning_rate=1e-3,
                        pooling="echo", dev=Path(dev), progress=False)
report = finetune(base, out, read_training(Path(train), "scored"), config=config)
print("RESUMED", report.resumed_from)
print("DEV", report.dev["sts-dev_spearman"])
"""


def test_a_killed_lora_run_resumes_to_the_same_result(tiny_llama: Path, tmp_path: Path) -> None:
    def run(out: Path) -> subprocess.Popen[str]:
        command = [sys.executable, "-c", RUN, str(tiny_llama), str(out), str(DEV), str(TRAIN)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)

    whole, err = (first := run(tmp_path / "whole")).communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    killed = run(tmp_path / "cut")
    kill_at_checkpoint(killed, tmp_path / "cut.checkpoints" / "checkpoint-8")
    assert not (tmp_path / "cut").exists()
    resumed, err = (again := run(tmp_path / "cut")).communicate(timeout=600)
    assert again.returncode == 0 and "RESUMED checkpoint-" in resumed, err[-3000:]

    def dev(out: str) -> float:
        return float(next(line for line in out.splitlines() if line.startswith("DEV ")).split()[1])

    assert abs(dev(whole) - dev(resumed)) < 1e-3, (whole[-300:], resumed[-300:])
    np.testing.assert_allclose(
        nestvec.load_encoder(tmp_path / "whole").encode(LLAMA_TEXTS),
        nestvec.load_encoder(tmp_path / "cut").encode(LLAMA_TEXTS),
        atol=1e-4,
    )
