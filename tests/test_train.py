"""`nestvec train` on a tiny model (two layers cut from MiniLM): real sentence-transformers training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.errors import InputError, InputFileError
from nestvec.train.data import read_training
from nestvec.train.finetune import RECORD_KEY, FinetuneConfig, checkpoint_is_whole, finetune
from tests.conftest import ROOT, kill_at_checkpoint, papers

pytest.importorskip("datasets", reason="nestvec train needs the 'train' extra")
st = pytest.importorskip("sentence_transformers", reason="nestvec train needs the 'train' extra")

TRAIN = ROOT / "tests" / "data" / "sts" / "stsb-en-train-400.csv"  # first rows of STS-B train (CC BY-SA 4.0)
DEV = ROOT / "tests" / "data" / "sts" / "stsb-en-dev-200.csv"
TEXTS = ["A man is playing a guitar.", "Binary embeddings keep recall with rescoring.", "Der Hund schläft."]


def test_cosent_training_lowers_the_loss_and_the_model_loads_everywhere(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    config = FinetuneConfig(
        loss="cosent", max_steps=16, batch_size=16, save_steps=8, eval_steps=8, dev=DEV, progress=False
    )
    report = finetune(tiny, out, read_training(TRAIN, "scored"), config=config)
    assert report.steps == 16 and len(report.losses) >= 3 and report.losses[-1] < report.losses[0]
    assert report.dev["sts-dev_spearman"] > 0 and not out.with_name("tuned.checkpoints").exists()
    ours = nestvec.load_encoder(str(out)).encode(TEXTS)
    theirs = st.SentenceTransformer(str(out), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    record = json.loads((out / "config_sentence_transformers.json").read_text())[RECORD_KEY]
    assert record["steps"] == 16 and record["data"][0]["rows"] == 400 and len(record["data"][0]["sha256"]) == 64
    assert record["config"]["loss"] == "cosent"
    with nestvec.Collection.create(tmp_path / "c", model=str(out)) as collection:
        collection.add([{"id": str(i), "text": t} for i, t in enumerate(TEXTS)])
        assert collection.search("someone plays guitar", k=1)[0].id == "0"


def test_matryoshka_pairs_and_simcse_train(tiny: Path, tmp_path: Path) -> None:
    rows = papers(80)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": p["title"], "positive": p["text"]}) + "\n" for p in rows))
    config = FinetuneConfig(loss="mnrl", dims=(384, 128, 32), max_steps=4, batch_size=16, progress=False)
    report = finetune(tiny, tmp_path / "m", read_training(pairs, "pairs"), config=config)
    assert report.steps == 4
    for nesting in ("two_d", "starbucks"):  # shallow layers as well as short prefixes
        options = {nesting: True}
        config = FinetuneConfig(loss="mnrl", dims=(384, 64), max_steps=2, batch_size=16, progress=False, **options)
        report = finetune(tiny, tmp_path / nesting, read_training(pairs, "pairs"), config=config)
        assert report.steps == 2 and np.isfinite(report.train_loss) and report.train_loss > 0
    texts = tmp_path / "glosses.txt"
    texts.write_text("".join(p["title"] + "\n" for p in rows))
    simcse = FinetuneConfig(loss="simcse", max_steps=3, batch_size=16, progress=False)
    assert finetune(tiny, tmp_path / "s", read_training(texts, "text"), config=simcse).steps == 3
    with pytest.raises(InputError, match="trains on scored data"):
        finetune(tiny, tmp_path / "x", read_training(texts, "text"), config=FinetuneConfig(loss="cosent"))


def test_bad_training_files_name_file_and_line_and_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "c"}\n')
    with pytest.raises(InputFileError, match=r"bad.jsonl:2.*positive"):
        read_training(bad, "pairs")
    scored = tmp_path / "bad.csv"
    scored.write_text("a,b,4.0\nc,d,seven\n")
    with pytest.raises(InputFileError, match=r"bad.csv:2.*not a number"):
        read_training(scored, "scored")
    done = subprocess.run(
        [sys.executable, "-m", "nestvec.cli.main", "train", str(tmp_path / "out"), "--data", str(bad)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1 and "bad.jsonl:2" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    good = tmp_path / "good.jsonl"
    good.write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": "d"}\n')
    data = read_training(good, "pairs")
    with pytest.raises(InputError, match=r"good\.jsonl is a file, not a folder"):
        finetune("minilm", good / "out", data, config=FinetuneConfig(max_steps=1, progress=False))
    with pytest.raises(InputError, match=r"Unknown device 'gpu'\. Valid choices: cpu, cuda"):
        finetune("minilm", tmp_path / "out", data, config=FinetuneConfig(max_steps=1, device="gpu", progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "bad.jsonl", "good.jsonl"]


RUN = """
import sys
from pathlib import Path
from nestvec.train.data import read_training
from nestvec.train.finetune import FinetuneConfig, finetune
config = FinetuneConfig(
    loss="cosent", max_steps=12, batch_size=16, save_steps=4, eval_steps=4, dev=Path(sys.argv[3]), progress=False
)
report = finetune(sys.argv[1], sys.argv[2], read_training(sys.argv[4], "scored"), config=config)
print("DEV", report.dev["sts-dev_spearman"], "RESUMED", report.resumed_from, flush=True)
"""


def test_a_killed_run_resumes_to_the_same_result(tiny: Path, tmp_path: Path) -> None:
    def run(out: Path) -> subprocess.Popen[str]:
        command = [sys.executable, "-c", RUN, str(tiny), str(out), str(DEV), str(TRAIN)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)

    first = run(tmp_path / "whole")
    whole, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    killed = run(tmp_path / "cut")
    checkpoints = tmp_path / "cut.checkpoints"
    # At once: on a fast machine the last four steps, their checkpoint and the final save take
    # about half a second. The kill may still land after a later checkpoint, or while one (or
    # its trainer_state.json) is half written: resume from the newest whole one.
    kill_at_checkpoint(killed, checkpoints / "checkpoint-8")
    assert not (tmp_path / "cut").exists()
    whole_ones = [p for p in checkpoints.iterdir() if checkpoint_is_whole(p)]
    newest = max(whole_ones, key=lambda p: int(p.name.split("-")[-1])).name
    (checkpoints / "checkpoint-11").mkdir()  # as a kill leaves one: weights written, no trainer state
    (checkpoints / "checkpoint-11" / "model.safetensors").write_bytes(b"cut off")
    resumed = run(tmp_path / "cut").communicate(timeout=600)[0]
    assert f"RESUMED {newest}" in resumed, resumed

    def dev(out: str) -> float:
        return float(next(line for line in out.splitlines() if line.startswith("DEV ")).split()[1])

    assert abs(dev(whole) - dev(resumed)) < 0.1, (whole[-500:], resumed[-500:])


def test_hard_negatives_skip_the_nearest_and_are_seeded(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    from nestvec.train.negatives import mine_negatives

    rows = papers(60)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": p["title"], "positive": p["text"]}) + "\n" for p in rows))
    data = read_training(pairs, "pairs")
    mined = mine_negatives(data, encoder, count=2, skip_top=3, seed=1)
    assert mined.columns == mine_negatives(data, encoder, count=2, skip_top=3, seed=1).columns
    abstracts = [p["text"] for p in rows]
    vectors = encoder.encode(abstracts)
    for row in range(len(rows)):
        negatives = {mined.columns["negative_1"][row], mined.columns["negative_2"][row]}
        assert abstracts[row] not in negatives and len(negatives) == 2
        scores = vectors @ encoder.encode([rows[row]["title"]])[0]
        scores[row] = -1
        nearest = {abstracts[i] for i in np.argsort(-scores)[:3]}
        assert not negatives & nearest  # the likely false negatives are skipped


def test_cached_in_batch_negatives_equal_the_plain_loss_and_gradients(tiny: Path) -> None:
    import torch

    from nestvec.train.losses import build_loss

    model = st.SentenceTransformer(str(tiny), device="cpu")
    model.eval()  # dropout off: both losses then compute the same function
    rows = papers(48)
    features = [model.preprocess([r["title"] for r in rows]), model.preprocess([r["text"][:400] for r in rows])]
    found = []
    for name in ("mnrl", "cached-mnrl"):
        model.zero_grad(set_to_none=True)
        loss = build_loss(model, name, mini_batch=8)(features, torch.zeros(len(rows)))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        found.append((float(loss.detach()), grads))
    (plain_loss, plain), (cached_loss, cached) = found
    assert abs(plain_loss - cached_loss) < 1e-5 and plain.keys() == cached.keys()
    assert max(float((plain[n] - cached[n]).abs().max()) for n in plain) < 1e-5


def test_two_data_sets_a_retrieval_dev_set_a_ladder_and_the_base_weight(tiny: Path, tmp_path: Path) -> None:
    rows = papers(60)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": p["title"], "positive": p["text"]}) + "\n" for p in rows[:40]))
    beir = tmp_path / "dev"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": p["id"], "text": p["text"]}) + "\n" for p in rows))
    queries = [json.dumps({"_id": "q" + p["id"], "text": p["title"]}) + "\n" for p in rows]
    (beir / "queries.jsonl").write_text("".join(queries))
    (beir / "qrels" / "dev.tsv").write_text("".join(f"q{p['id']}\t{p['id']}\t1\n" for p in rows[40:]))
    sets = [read_training(TRAIN, "scored"), read_training(pairs, "pairs")]
    config = FinetuneConfig(
        loss=("cosent", "mnrl"), dims=(384, 64), starbucks=True, ladder=((1, 64), (2, 384)), max_steps=4,
        batch_size=16, save_steps=2, eval_steps=2, dev=beir, base_weight=1.0, progress=False,
    )  # fmt: skip
    report = finetune(tiny, tmp_path / "out", sets, config=config)
    assert report.steps == 4 and report.dev["retrieval-dev_ndcg10"] > 0 and "retrieval-dev_ndcg10_64" in report.dev
    record = json.loads((tmp_path / "out" / "config_sentence_transformers.json").read_text())[RECORD_KEY]
    assert [d["loss"] for d in record["data"]] == ["cosent", "mnrl"] and record["config"]["base_weight"] == 1.0
    # base weight 1: every weight is the base's again, whatever training did
    base, out = nestvec.load_encoder(tiny, backend="torch"), nestvec.load_encoder(tmp_path / "out", backend="torch")
    np.testing.assert_allclose(out.encode(TEXTS), base.encode(TEXTS), atol=1e-6)
    with pytest.raises(InputError, match="one loss per data set"):
        finetune(tiny, tmp_path / "x", sets, config=FinetuneConfig(loss=("cosent",)))
    with pytest.raises(InputError, match="was read as pairs"):
        finetune(tiny, tmp_path / "x", sets, config=FinetuneConfig(loss=("cosent", "cosent")))


def test_cli_train_json_output_is_only_json(tiny: Path, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "nestvec.cli.main", "train", str(tmp_path / "out"), "--base", str(tiny),
        "--data", str(TRAIN), "--kind", "scored", "--loss", "cosent", "--steps", "2", "--batch-size", "8",
        "--save-steps", "1", "--eval-steps", "1", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # the trainer's log lines must not reach stdout
    assert report["steps"] == 2 and Path(report["output"]).is_dir()


def test_distilling_moves_a_cut_model_towards_its_teacher(tiny: Path, tmp_path: Path, minilm_dir: Path) -> None:
    texts = tmp_path / "unlabeled.txt"
    sentences = [p["title"] for p in papers(96)]
    texts.write_text("".join(s + "\n" for s in sentences))
    teacher = nestvec.load_encoder(str(minilm_dir)).encode(sentences)

    def agreement(model: Path) -> float:
        return float(np.mean(np.sum(nestvec.load_encoder(str(model)).encode(sentences) * teacher, axis=1)))

    config = FinetuneConfig(
        loss="mse",
        teacher=str(minilm_dir),
        max_steps=24,
        batch_size=16,
        learning_rate=2e-4,
        save_steps=8,
        progress=False,
    )
    report = finetune(tiny, tmp_path / "student", read_training(texts, "text"), config=config)
    assert report.losses[-1] < report.losses[0]
    assert agreement(tmp_path / "student") > agreement(tiny) + 0.01
    record = json.loads((tmp_path / "student" / "config_sentence_transformers.json").read_text())[RECORD_KEY]
    assert record["data"][0]["teacher"] == str(minilm_dir) and record["data"][0]["loss"] == "mse"
    with pytest.raises(InputError, match="--teacher"):
        finetune(tiny, tmp_path / "x", read_training(texts, "text"), config=FinetuneConfig(loss="mse"))
    with pytest.raises(InputError, match="only by the distillation losses"):
        taught = FinetuneConfig(loss="cosent", teacher="minilm")
        finetune(tiny, tmp_path / "y", read_training(TRAIN, "scored"), config=taught)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_similarity_distillation_teaches_a_prefix_the_teachers_similarities(
    tiny: Path, tmp_path: Path, minilm_dir: Path
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from nestvec.train.similarity import PrefixSimilarityLoss

    sentences = [p["title"] for p in papers(96)]
    texts = tmp_path / "unlabeled.txt"
    texts.write_text("".join(s + "\n" for s in sentences))
    teacher = nestvec.load_encoder(str(minilm_dir)).encode(sentences)
    wanted = teacher @ teacher.T
    off = ~np.eye(len(sentences), dtype=bool)

    def gap(model: Path, dims: int) -> float:
        cut = nestvec.load_encoder(str(model)).encode(sentences)[:, :dims]
        cut /= np.linalg.norm(cut, axis=1, keepdims=True)
        return float(np.abs((cut @ cut.T - wanted)[off]).mean())

    # a model compared with its own vectors loses nothing at full width, and something at 32 dims
    st = SentenceTransformer(str(minilm_dir), device="cpu").eval()
    features = st.preprocess(sentences[:16])
    labels = torch.tensor(teacher[:16])
    with torch.no_grad():
        assert float(PrefixSimilarityLoss(st)([features], labels)) < 1e-8
        assert float(PrefixSimilarityLoss(st, (384, 32))([features], labels)) > 1e-4
    config = FinetuneConfig(
        loss="similarity", dims=(384, 64), teacher=str(minilm_dir), max_steps=24, batch_size=16,
        learning_rate=2e-4, save_steps=8, progress=False,
    )  # fmt: skip
    report = finetune(tiny, tmp_path / "student", read_training(texts, "text"), config=config)
    assert report.losses[-1] < report.losses[0]
    assert gap(tmp_path / "student", 64) < gap(tiny, 64) * 0.8
    record = json.loads((tmp_path / "student" / "config_sentence_transformers.json").read_text())[RECORD_KEY]
    assert record["data"][0] == {**record["data"][0], "teacher": str(minilm_dir), "loss": "similarity"}


def test_rotate_starts_from_the_principal_axes_and_keeps_full_width_cosines(
    tiny: Path, tmp_path: Path, minilm_dir: Path
) -> None:
    from nestvec.train.rotation import add_rotation

    texts = [p["title"] for p in papers(450)]  # at least as many texts as dims
    base = st.SentenceTransformer(str(minilm_dir), device="cpu")
    rotated = add_rotation(st.SentenceTransformer(str(minilm_dir), device="cpu"), texts)
    before, after = base.encode(texts), rotated.encode(texts)
    np.testing.assert_allclose(after @ after.T, before @ before.T, atol=1e-5)  # an orthogonal rotation

    def kept(vectors: np.ndarray) -> tuple[float, float]:  # at 32 dims: energy kept, top-5 neighbours shared
        cut = vectors[:, :32] / np.linalg.norm(vectors[:, :32], axis=1, keepdims=True)
        full, short = before @ before.T - 2 * np.eye(len(texts)), cut @ cut.T - 2 * np.eye(len(texts))
        top = lambda m: np.argsort(-m, axis=1)[:, :5]  # noqa: E731
        shared = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top(full), top(short), strict=True)])
        return float(np.mean(np.sum(vectors[:, :32] ** 2, axis=1))), float(shared)

    (energy, shared), (energy_naive, shared_naive) = kept(after), kept(before)
    assert energy > 2 * energy_naive and shared > shared_naive
    sentences = tmp_path / "texts.txt"
    sentences.write_text("".join(t + "\n" for t in texts))
    config = FinetuneConfig(
        loss=("cosent", "similarity"), teacher=str(minilm_dir), dims=(384, 64), rotate=True, max_steps=4,
        batch_size=16, save_steps=4, progress=False,
    )  # fmt: skip
    finetune(tiny, tmp_path / "out", [read_training(TRAIN, "scored"), read_training(sentences, "text")], config=config)
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((tmp_path / "out" / "modules.json").read_text())]
    assert modules == ["Transformer", "Pooling", "Dense", "Normalize"]
    ours = nestvec.load_encoder(str(tmp_path / "out")).encode(TEXTS)
    np.testing.assert_allclose(
        ours, st.SentenceTransformer(str(tmp_path / "out"), device="cpu").encode(TEXTS), atol=1e-5
    )
    for refused, match in (
        (dict(loss="similarity", base_weight=0.3), "cannot be mixed"),
        (dict(loss="mse"), "rotation moves"),
    ):
        bad = FinetuneConfig(**{"teacher": str(minilm_dir), "rotate": True, "max_steps": 1, **refused})
        with pytest.raises(InputError, match=match):
            finetune(tiny, tmp_path / "refused", read_training(sentences, "text"), config=bad)
    assert not (tmp_path / "refused").exists()


def _ranked_file(folder: Path, teacher: nestvec.Encoder, *, rows: int = 48, width: int = 6) -> Path:
    """Each title with abstracts at fixed ranks of the teacher's full-width order, and their cosines."""
    chosen = papers(rows * 2)
    # abstracts cut to their first 24 words: the test trains on them, and full ones are slow on 2 cores
    titles, abstracts = [p["title"] for p in chosen[:rows]], [" ".join(p["text"].split()[:24]) for p in chosen]
    scores = teacher.encode(titles) @ teacher.encode(abstracts).T
    out = folder / "ranked.jsonl"
    with out.open("w") as f:
        for title, row in zip(titles, scores, strict=True):
            picked = np.argsort(-row)[[0, 1, 2, 5, 12, 40][:width]]
            f.write(json.dumps({"anchor": title, "passages": [abstracts[j] for j in picked],
                                "scores": [float(row[j]) for j in picked]}) + "\n")  # fmt: skip
    return out


def test_listwise_distillation_teaches_a_prefix_the_teachers_order(
    tiny: Path, tmp_path: Path, minilm_dir: Path
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

    from nestvec.train.listwise import ListwiseLoss

    teacher = nestvec.load_encoder(str(minilm_dir))
    data = read_training(_ranked_file(tmp_path, teacher), "ranked")
    assert data.rows == 48 and len(data.columns["label"][0]) == 6 and "passage_6" in data.columns
    # the teacher against its own scores: nothing to learn at full width, something at 32 dims
    model = SentenceTransformer(str(minilm_dir), device="cpu").eval()
    features = [model.preprocess(data.columns[c][:8]) for c in ["anchor", *(f"passage_{i}" for i in range(1, 7))]]
    labels = torch.tensor(data.columns["label"][:8])
    with torch.no_grad():
        assert float(ListwiseLoss(model)(features, labels)) < 1e-4
        short = MatryoshkaLoss(model, ListwiseLoss(model), [32], matryoshka_weights=[1])
        assert float(short(features, labels)) > 1e-2
    config = FinetuneConfig(
        loss="listwise", dims=(384, 64), max_steps=16, batch_size=8, learning_rate=2e-4, save_steps=8, progress=False
    )
    report = finetune(tiny, tmp_path / "student", data, config=config)
    assert report.losses[-1] < report.losses[0]
    record = json.loads((tmp_path / "student" / "config_sentence_transformers.json").read_text())[RECORD_KEY]
    assert record["data"][0]["kind"] == "ranked" and record["data"][0]["loss"] == "listwise"


@pytest.mark.parametrize(
    ("row", "found"),
    [
        ({"anchor": "q", "passages": ["a", "b"], "scores": [0.5]}, "list of 2 finite numbers"),
        ({"anchor": "q", "passages": "a b", "scores": [0.5, 0.1]}, "list of non-empty texts"),
        ({"anchor": "q", "passages": ["a", "b"], "scores": [0.5, "high"]}, "list of 2 finite numbers"),
        ({"anchor": "q", "passages": ["a", "b", "c"], "scores": [0.5, 0.1, 0.0]}, "3 passages where 2"),
    ],
)
def test_bad_ranked_rows_name_file_line_and_what_was_expected(tmp_path: Path, row: dict, found: str) -> None:
    bad = tmp_path / "ranked.jsonl"
    good = {"anchor": "q", "passages": ["a", "b"], "scores": [0.9, 0.2]}
    bad.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(InputFileError, match=rf"ranked.jsonl:2.*{found}"):
        read_training(bad, "ranked")
