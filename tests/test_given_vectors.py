"""Bring your own vectors: documents added with vectors made elsewhere, and search by vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.errors import InputError
from tests.conftest import paper_docs


def test_given_vectors_store_and_search_as_the_model_would(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    docs = paper_docs(40)
    vectors = encoder.encode([d.text for d in docs])
    with nestvec.Collection.create(tmp_path / "own", model="minilm", dims=128) as own:
        report = own.add(docs, vectors=vectors)
        assert report.added == 40
        with nestvec.Collection.create(tmp_path / "made", model="minilm", dims=128) as made:
            made.add(docs)
            query = "contrastive sentence embeddings"
            by_text = [(h.id, round(h.score, 4)) for h in made.search(query, k=5)]
            assert [(h.id, round(h.score, 4)) for h in own.search(query, k=5)] == by_text
            by_vector = own.search_vectors(encoder.encode([query]), k=5)
            assert [(h.id, round(h.score, 4)) for h in by_vector[0]] == by_text
            filtered = own.search_vectors(encoder.encode([query])[0], k=3, filter={"n": {"$lt": 10}})[0]
            assert len(filtered) == 3 and all(h.metadata["n"] < 10 for h in filtered)


@pytest.mark.parametrize(
    ("vectors", "words"),
    [
        (np.ones((3, 384), dtype=np.float32), "row 0 has norm 19.5959"),
        (np.zeros((3, 256), dtype=np.float32), "must have shape (3, 384)"),
        (np.full((3, 384), np.nan, dtype=np.float32), "row 0 holds NaN"),
        (np.zeros((2, 384), dtype=np.float32), "must have shape (3, 384)"),
        ("not numbers", "must be a matrix of numbers"),
    ],
)
def test_wrong_vectors_are_refused_and_nothing_is_written(
    tmp_path: Path, encoder: nestvec.Encoder, vectors: object, words: str
) -> None:
    with nestvec.Collection.create(tmp_path / "c", model="minilm") as collection:
        with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
            collection.add(paper_docs(3), vectors=vectors)
        assert len(collection) == 0
        with pytest.raises(InputError, match="query vectors"):
            collection.search_vectors(np.ones(384), k=1)


def test_cli_add_with_vectors_from_nestvec_embed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nestvec.cli.main import app

    runner = CliRunner()
    source = tmp_path / "docs.jsonl"
    import json

    source.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in paper_docs(30)))
    for suffix in ("npy", "parquet"):
        out = tmp_path / f"vectors.{suffix}"
        assert runner.invoke(app, ["embed", str(source), str(out), "--no-progress"]).exit_code == 0
        folder = tmp_path / f"c-{suffix}"
        nestvec.Collection.create(folder, model="minilm").close()
        added = runner.invoke(app, ["add", str(folder), str(source), "--vectors", str(out), "--json"])
        assert added.exit_code == 0, added.output
        assert json.loads(added.stdout)["added"] == 30
    built = tmp_path / "built"
    assert runner.invoke(app, ["index", "build", str(source), str(built)]).exit_code == 0
    query = "binary quantization"
    with nestvec.Collection.open(built) as reference:
        expected = [(h.id, round(h.score, 4)) for h in reference.search(query, k=5)]
    for suffix in ("npy", "parquet"):
        with nestvec.Collection.open(tmp_path / f"c-{suffix}") as collection:
            assert [(h.id, round(h.score, 4)) for h in collection.search(query, k=5)] == expected
    np.save(tmp_path / "short.npy", np.zeros((3, 384), dtype=np.float32))
    nestvec.Collection.create(tmp_path / "c3", model="minilm").close()
    short = runner.invoke(app, ["add", str(tmp_path / "c3"), str(source), "--vectors", str(tmp_path / "short.npy")])
    assert short.exit_code == 1 and "3 vectors for 30 records" in short.output
