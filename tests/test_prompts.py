"""Query and document prompts: from the model folder or the recipe, on every path that embeds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.encoders.prompts import PromptedEncoder
from nestvec.errors import InputError
from nestvec.eval.setting import Setting
from nestvec.recipe import Recipe
from nestvec.store import chunking
from tests.conftest import model_variant

DOCS = ["Vectors are searched by cosine similarity.", "Cats sleep for most of the day."]
QUERY = "how are vectors searched"
E5 = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def e5_like(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """MiniLM's weights with e5's prompts declared as sentence-transformers declares them."""
    folder = model_variant(minilm_dir, tmp_path_factory.mktemp("e5") / "model")
    config = {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    return folder


def _same(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_folders_prompts_are_read_and_a_default_prompt_serves_both_sides(e5_like: Path, tmp_path: Path) -> None:
    assert nestvec.load_encoder(e5_like).prompts == E5  # "passage" is the document side's name
    other = tmp_path / "bge"
    other.mkdir()
    config = {"prompts": {"retrieval": "Represent this for search: "}, "default_prompt_name": "retrieval"}
    (other / "config_sentence_transformers.json").write_text(json.dumps(config))
    from nestvec.encoders.prompts import folder_prompts

    assert folder_prompts(other) == {
        "query": config["prompts"]["retrieval"],
        "document": config["prompts"]["retrieval"],
    }


def test_collections_embed_documents_and_queries_with_their_prompts(
    e5_like: Path, encoder: nestvec.Encoder, tmp_path: Path
) -> None:
    with nestvec.Collection.create(tmp_path / "c", model=str(e5_like)) as collection:
        collection.add([nestvec.Document(str(i), t) for i, t in enumerate(DOCS)])
        _same(collection.embed_queries([QUERY]), encoder.encode(["query: " + QUERY]))
        _, stored, _ = collection.stored_vectors()
        _same(stored, encoder.encode(["passage: " + t for t in DOCS]))
        assert collection.search(QUERY, k=1)[0].id == "0"
    saved = json.loads((tmp_path / "c" / "config.json").read_text())["recipe"]["encoder"]
    assert (saved["query_prompt"], saved["document_prompt"]) == ("query: ", "passage: ")  # resolved, saved
    with nestvec.Collection.open(tmp_path / "c") as again:  # the saved prompts, not the folder's, from now on
        _same(again.embed_queries([QUERY]), encoder.encode(["query: " + QUERY]))


def test_a_recipes_prompts_override_the_model_and_are_part_of_its_identity(
    encoder: nestvec.Encoder, tmp_path: Path
) -> None:
    recipe = Recipe.parse('minilm:query_prompt="Represent: ":document_prompt=""')
    assert recipe != Recipe.parse("minilm")
    assert Recipe.parse(str(recipe)) == recipe
    assert str(recipe) == 'minilm:query_prompt="Represent: ":document_prompt=""'
    with nestvec.Collection.create(tmp_path / "c", recipe) as collection:
        collection.add([nestvec.Document("a", DOCS[0])])
        _same(collection.embed_queries([QUERY]), encoder.encode(["Represent: " + QUERY]))
        _same(collection.stored_vectors()[1], encoder.encode(DOCS[:1]))
    with pytest.raises(InputError, match="opens a quote"):
        Recipe.parse('minilm:query_prompt="query: ')
    with pytest.raises(InputError, match="quotes are for text values"):
        Recipe.parse('minilm:dims="64"')


def test_long_documents_split_into_windows_that_leave_room_for_the_prompt(
    e5_like: Path, encoder: nestvec.Encoder, tmp_path: Path
) -> None:
    long = " ".join(f"word{i}" for i in range(900))
    documents = PromptedEncoder(nestvec.load_encoder(e5_like), "passage: ")
    assert documents.max_tokens == encoder.max_tokens - (encoder.token_counts(["passage: "])[0] - 2)
    spans = chunking.plan(documents, [long], chunking.LongDocuments("split"))[0].spans
    assert len(spans) > 1
    for start, end in spans:  # every prompted window fits the model, so nothing is cut off
        assert encoder.token_counts(["passage: " + long[start:end]])[0] <= encoder.max_tokens
    with nestvec.Collection.create(tmp_path / "c", model=str(e5_like), long_documents="split") as collection:
        collection.add([nestvec.Document("long", long)])
        _same(collection.stored_vectors()[1], encoder.encode(["passage: " + long[s:e] for s, e in spans]))


def test_eval_puts_the_query_prompt_on_both_sides_of_symmetric_tasks(e5_like: Path, encoder: nestvec.Encoder) -> None:
    _same(Setting.parse(str(e5_like)).symmetric_encoder().encode(DOCS), encoder.encode(["query: " + t for t in DOCS]))
    mine = Setting.parse('minilm:query_prompt="Compare: "').symmetric_encoder()
    _same(mine.encode(DOCS), encoder.encode(["Compare: " + t for t in DOCS]))


def test_the_server_takes_input_type_and_its_collections_use_their_prompts(
    e5_like: Path, encoder: nestvec.Encoder, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from nestvec.serve import ServeConfig, create_app

    (tmp_path / "data").mkdir()
    config = ServeConfig(model=str(e5_like), data_dir=tmp_path / "data")
    with TestClient(create_app(config)) as client:
        for input_type, prefix in (("query", "query: "), ("document", "passage: "), (None, "")):
            body = {"input": DOCS, "model": str(e5_like), **({"input_type": input_type} if input_type else {})}
            got = client.post("/v1/embeddings", json=body).json()["data"]
            _same(np.array([d["embedding"] for d in got]), encoder.encode([prefix + t for t in DOCS]))
        bad = client.post("/v1/embeddings", json={"input": DOCS, "model": str(e5_like), "input_type": "passage"})
        assert bad.status_code == 422
        made = client.post("/collections", json={"name": "c", "model": str(e5_like), "query_prompt": "Find: "})
        assert made.status_code == 201, made.text
        docs = [{"id": str(i), "text": t} for i, t in enumerate(DOCS)]
        assert client.post("/collections/c/documents", json={"documents": docs}).status_code < 300
        hits = client.post("/collections/c/search", json={"query": QUERY, "k": 2}).json()["hits"]
    with nestvec.Collection.open(tmp_path / "data" / "c") as collection:
        _same(collection.stored_vectors()[1], encoder.encode(["passage: " + t for t in DOCS]))
        expected = encoder.encode(["Find: " + QUERY])[0] @ collection.stored_vectors()[1].T
    assert [h["id"] for h in hits] == [str(i) for i in np.argsort(-expected)]
    assert hits[0]["score"] == pytest.approx(float(expected.max()), abs=1e-4)


def test_nestvec_embed_takes_an_input_type(e5_like: Path, encoder: nestvec.Encoder, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("\n".join(DOCS) + "\n")
    for input_type, prefix in (("query", "query: "), ("document", "passage: ")):
        out = tmp_path / f"{input_type}.npy"
        run = [sys.executable, "-m", "nestvec.cli.main", "embed", "in.txt", str(out), "--model", str(e5_like)]
        done = subprocess.run([*run, "--input-type", input_type], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        _same(np.load(out), encoder.encode([prefix + t for t in DOCS]))
    done = subprocess.run([*run, "--input-type", "passage"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and "Unknown input type 'passage'" in done.stderr
