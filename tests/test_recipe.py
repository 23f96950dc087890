"""One recipe on every path: grammar, field table, old collections, codes shared with eval, whitening."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import nestvec
from nestvec import Collection, Recipe
from nestvec.cli.main import app
from nestvec.errors import InputError
from nestvec.eval import Setting, evaluate_retrieval, evaluate_sts
from nestvec.eval.readers import read_sts
from nestvec.recipe import FIELDS, given_fields
from nestvec.transforms.reduce import normalize
from tests.conftest import ROOT, STS_TEST, paper_docs, sts_sentences

LEGACY = ROOT / "tests" / "data" / "legacy"
runner = CliRunner()


def test_grammar_round_trips_and_matches_keywords() -> None:
    text = "minilm:dims=128:index=ivf:codes=rabitq:rescore=10:nprobe=8:long_documents=split:bm25=no"
    recipe = Recipe.parse(text)
    assert str(recipe) == text
    made = Recipe.make(
        model="minilm", dims=128, index="ivf", codes="rabitq", rescore=10, nprobe=8, long_documents="split", bm25=False
    )
    assert made == recipe and Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    assert recipe.index.codes == "rabitq" and recipe.sparse is None and recipe.vectors.dims == 128
    # codes below float32 rescore ×4 unless told; changing the codes later keeps that rule
    assert Recipe.parse("minilm:codes=int8").index.rescore == 4
    assert Recipe.parse("minilm:codes=int8").with_values(codes="float32").index.rescore == 0
    assert Recipe.parse("minilm:codes=int8:rescore=0").index.rescore == 0
    # what a string sets itself, as against defaults (the server honours or refuses those)
    assert given_fields("dims=64:codes=int8") == {"dims", "codes"}
    assert given_fields('smollm2:query_prompt="q: a:b"') == {"model", "query_prompt"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("minilm:bits=4", "not understood; valid: .*codes=float32|float16|int8|binary|rabitq"),
        ("minilm:codes=int4", "Unknown code precision 'int4'"),
        ("minilm:rescore=-1", "rescore must be an integer ≥ 0"),
        ("minilm:dims=abc", "dims must be an integer, got 'abc'"),
        ("minilm:whiten=maybe", "whiten takes yes or no"),
        ("minilm:index=hnsw:codes=rabitq", "rabitq codes work with strategy 'flat' or 'ivf'"),
        ("minilm:spill=101", "spill must be between 0 and 100"),
        ("minilm:mode=hybrid", "search options, not part of a recipe"),
        ("minilm:dims=64:index=ivf:dims=32", "'dims' is given twice"),
    ],
)
def test_bad_recipes_say_what_is_valid(text: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        Recipe.parse(text)


def test_cli_options_and_http_schema_come_from_the_one_table() -> None:
    from nestvec.serve.schemas import CreateCollection, SearchRequest

    help_text = runner.invoke(app, ["index", "build", "--help"], env={"COLUMNS": "200"}).output
    schema = CreateCollection.model_json_schema()["properties"]
    search = SearchRequest.model_json_schema()["properties"]
    for f in FIELDS:
        if f.query_time:
            assert search[f.name].get("default") == f.default
            continue
        assert f.option in help_text, f.option
        if f.part in ("vectors", "index", "documents", "bm25"):
            entry = schema[f.name]
            assert entry.get("default") == f.default, f.name
            if f.low is not None and f.kind is not bool:
                bounds = [entry.get("minimum")] + [o.get("minimum") for o in entry.get("anyOf", [])]
                assert f.low in bounds, f.name
            if f.choices:
                assert tuple(entry["enum"]) == f.choices


def test_a_collection_written_by_nestvec_0_1_opens_and_answers_identically(tmp_path: Path) -> None:
    folder = shutil.copytree(LEGACY / "papers-0.1", tmp_path / "old")
    with Collection.open(folder) as old:
        assert old.recipe.index.codes == "int8" and old.recipe.vectors.dims == 128
        assert old.recipe.long_documents.mode == "split" and old.info().index_status == "loaded from checkpoint"
        _answers_as_recorded(old)
        old.add([nestvec.Document("new", "Binary codes and int8 codes for vector search.")])
    with Collection.open(folder) as reopened:  # written back in the current format, still the same recipe
        assert reopened.get(["new"])[0].text.startswith("Binary codes")
        assert json.loads((folder / "config.json").read_text())["recipe"]["index"]["precision"] == "int8"


def test_an_older_store_gets_the_hits_index_from_compact_and_answers_the_same(tmp_path: Path) -> None:
    folder = shutil.copytree(LEGACY / "papers-0.1", tmp_path / "old")

    def hits_index() -> bool:
        with closing(sqlite3.connect(folder / "store.sqlite3")) as db:
            return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_hits'").fetchone() is not None

    assert not hits_index()  # opening alone writes no index: it would hold other writers for seconds
    with Collection.open(folder) as old:
        old.compact()
    assert hits_index()
    with Collection.open(folder) as compacted:
        _answers_as_recorded(compacted)


def _answers_as_recorded(collection: Collection) -> None:
    """The 0.1 fixture's recorded hits (ids, best chunks, scores) for each of its queries."""
    answers = json.loads((LEGACY / "papers-0.1-answers.json").read_text())
    for key, expected in answers.items():
        mode, query = key.split(":", 1)
        hits = collection.search(query, k=5, mode=mode)
        assert [[h.id, h.chunk.number if h.chunk else None] for h in hits] == [[e[0], e[2]] for e in expected]
        np.testing.assert_allclose([h.score for h in hits], [e[1] for e in expected], atol=1e-5)


def test_eval_int8_codes_are_the_collections_int8_vectors(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    texts = sts_sentences()
    setting = Setting.parse("minilm:codes=int8")
    expected = setting.apply(encoder.encode(texts, batch_size=64))
    collection = Collection.create(tmp_path / "int8", "minilm:codes=int8", model=encoder, bm25=False)
    collection.add([{"id": str(i), "text": t} for i, t in enumerate(texts)], batch_size=len(texts))
    labels, _, ids = collection.stored_vectors()
    stored = collection.decoded_vectors(labels)
    order = np.argsort(np.asarray(ids, dtype=np.int64))
    # The same codes: equal up to the 3e-8 the model's floats differ by between batchings.
    np.testing.assert_allclose(stored[order], expected, rtol=0, atol=1e-6)
    # The STS-B figure from the collection's own codes equals eval's
    gold = read_sts(STS_TEST)
    row = {t: stored[order][i] for i, t in enumerate(texts)}
    a, b = normalize(np.stack([row[t] for t in gold.texts1])), normalize(np.stack([row[t] for t in gold.texts2]))
    from scipy.stats import spearmanr

    from_collection = 100 * spearmanr((a * b).sum(axis=1), gold.values).statistic
    assert evaluate_sts(STS_TEST, setting).main == pytest.approx(from_collection, abs=0.01)
    collection.close()


def test_a_whitened_collection_fits_saves_and_applies_its_transform(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    path = tmp_path / "white"
    docs = paper_docs(300)
    with Collection.create(path, "minilm:whiten=yes:dims=128", model=encoder) as collection:
        with pytest.raises(InputError, match="needs at least 256"):
            collection.add(docs[:40])
        collection.add(docs)
        assert collection.count() == 300
    with Collection.create(tmp_path / "full", "minilm:whiten=yes", model=encoder) as full:
        with pytest.raises(InputError, match="needs at least 768"):  # all 384 dims kept: 2 × 384 samples
            full.add(docs)
        assert full.count() == 0
    saved = json.loads((path / "transforms" / "config.json").read_text())
    assert saved["name"] == "whiten" and (path / "transforms" / "tensors.safetensors").exists()
    from nestvec.transforms import load

    whiten = load(path / "transforms")
    with Collection.open(path) as reopened:
        query = "binary quantization of embeddings"
        np.testing.assert_allclose(
            reopened.embed_queries([query]), whiten.apply(encoder.encode([query])), rtol=1e-5, atol=1e-6
        )
        hit = reopened.search(docs[7].text[:200], k=1)[0]
        assert hit.id == docs[7].id and reopened.recipe.dim == 128


def test_a_pca_collection_searches_its_rotated_prefix_and_derives_smaller_widths(
    tmp_path: Path, encoder: nestvec.Encoder
) -> None:
    from nestvec.store.rebuild import rebuild_collection
    from nestvec.transforms import load

    docs = paper_docs(300)
    with Collection.create(tmp_path / "pca", "minilm:pca=yes:dims=128", model=encoder) as collection:
        collection.add(docs)
    axes = load(tmp_path / "pca" / "transforms")
    assert axes.name == "pca" and axes.matrix.shape == (384, 128)
    query = "binary quantization of embeddings"
    with Collection.open(tmp_path / "pca", model=encoder) as reopened:
        np.testing.assert_allclose(
            reopened.embed_queries([query]), axes.apply(encoder.encode([query])), rtol=1e-5, atol=1e-6
        )
        assert reopened.search(docs[7].text[:200], k=1)[0].id == docs[7].id
    rebuild_collection(tmp_path / "pca", "dims=64")
    with Collection.open(tmp_path / "pca", model=encoder) as smaller:
        assert smaller.recipe.vectors.pca and smaller.recipe.dim == 64
        np.testing.assert_allclose(
            smaller.embed_queries([query]), axes.truncated(64).apply(encoder.encode([query])), rtol=1e-5, atol=1e-6
        )
        assert smaller.search(docs[7].text[:200], k=1)[0].id == docs[7].id
    with pytest.raises(InputError, match=r"whiten and pca .* choose one"):
        Recipe.parse("minilm:whiten=yes:pca=yes")


def test_retrieval_compare_over_index_settings_embeds_the_corpus_once(
    tmp_path: Path, encoder: nestvec.Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = sts_sentences()[:400]
    (tmp_path / "qrels").mkdir()
    with (tmp_path / "corpus.jsonl").open("w") as fh:
        fh.writelines(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    queries = {f"q{i}": texts[i] for i in range(0, 400, 40)}
    (tmp_path / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    (tmp_path / "qrels" / "test.tsv").write_text("".join(f"{q}\td{q[1:]}\t1\n" for q in queries))
    embedded: list[int] = []
    original = type(encoder).encode

    def counting(self, texts, **kwargs):  # type: ignore[no-untyped-def]
        embedded.append(len(texts))
        return original(self, texts, **kwargs)

    monkeypatch.setattr(type(encoder), "encode", counting)
    specs = ["minilm", "minilm:index=hnsw", "minilm:codes=int8", "minilm:dims=256:codes=binary"]
    results = [evaluate_retrieval(tmp_path, Setting.parse(s)) for s in specs]
    corpus_calls = [n for n in embedded if n == len(texts)]
    assert len(corpus_calls) == 1, embedded  # the corpus once; the rest are query batches of 10
    assert all(n == len(queries) for n in embedded if n != len(texts))
    assert [r.setting for r in results] == specs
    assert all(r.metrics["ndcg@10"] > 90 for r in results)


def test_help_does_not_import_the_heavy_modules() -> None:
    code = (
        "import sys; from nestvec.cli.main import main; sys.argv = ['nestvec', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'onnxruntime', 'faiss', 'sklearn', 'scipy', 'matplotlib', 'pyarrow', 'fastapi',"
        " 'transformers', 'sqlite3', 'tokenizers', 'numpy', 'pydantic'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
