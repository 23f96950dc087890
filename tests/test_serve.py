"""nestvec serve in process (FastAPI's TestClient over the real app and the real MiniLM)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="nestvec serve needs the 'serve' extra")
from fastapi.testclient import TestClient

import nestvec
from nestvec.cli.serve_cmd import check_auth
from nestvec.errors import InputError
from nestvec.serve import BatchPolicy, Limits, ServeConfig, create_app
from nestvec.serve.auth import KeyStore
from tests.conftest import paper_docs

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _docs(n: int) -> list[dict]:
    return [{"id": d.id, "text": d.text, "metadata": d.metadata} for d in paper_docs(n)]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    store = KeyStore.open(tmp_path_factory.mktemp("keys") / "keys.json", create=True)
    return {scope: store.create(scope=scope, name=scope)[1] for scope in ("read", "write")} | {"file": str(store.path)}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, str]) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("served")
    with nestvec.Collection.create(data / "papers") as papers:
        papers.add(paper_docs(60))
    config = ServeConfig(data_dir=data, keys=Path(keys["file"]), limits=Limits(max_body_bytes=200_000, max_texts=64))
    with TestClient(create_app(config)) as c:
        c.headers["Authorization"] = f"Bearer {keys['write']}"
        yield c


def test_embeddings_match_the_library(client: TestClient, encoder: nestvec.Encoder) -> None:
    texts = ["A cat sits on the mat.", "Vector search at scale.", "ok"]
    expected = encoder.encode(texts)
    body = client.post("/v1/embeddings", json={"input": texts, "model": "minilm"}).json()
    assert body["model"] == MODEL and [d["index"] for d in body["data"]] == [0, 1, 2]
    np.testing.assert_allclose(np.array([d["embedding"] for d in body["data"]]), expected, atol=1e-5)
    assert body["usage"]["prompt_tokens"] == sum(encoder.token_counts(texts))
    b64 = client.post("/v1/embeddings", json={"input": texts[0], "model": MODEL, "encoding_format": "base64"}).json()
    np.testing.assert_allclose(
        np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), "<f4"), expected[0], atol=1e-5
    )
    short = client.post("/v1/embeddings", json={"input": texts, "model": MODEL, "dimensions": 64}).json()
    vectors = np.array([d["embedding"] for d in short["data"]])
    truncated = expected[:, :64] / np.linalg.norm(expected[:, :64], axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, truncated, atol=1e-5)
    assert client.get("/v1/models").json()["data"][0]["id"] == MODEL


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"input": "hi", "model": "gpt-4"}, 404, "serves the model"),
        ({"input": [1, 2, 3], "model": "minilm"}, 400, "token ids"),
        ({"input": [], "model": "minilm"}, 400, "empty"),
        ({"input": ["x"] * 65, "model": "minilm"}, 400, "limit is 64"),
        ({"input": "hi", "model": "minilm", "dimensions": 999}, 400, "at most the model's 384"),
        ({"input": "hi", "model": "minilm", "encoding_format": "int8"}, 422, "encoding_format"),
        ({"input": "\ud800 lone surrogate", "model": "minilm"}, 400, "not valid Unicode"),
        ({"model": "minilm"}, 422, "input"),
        ({"input": ["fine", "  "], "model": "minilm"}, 400, "input[1] is empty or whitespace only"),
        ({"input": ["ok", "word " * 400], "model": "minilm", "truncate": False}, 413, "over the model's 256"),
    ],
)
def test_bad_embedding_requests_get_4xx_with_a_json_error(
    client: TestClient, body: dict, status: int, words: str
) -> None:
    # json.dumps escapes the lone surrogate as "\ud800", as a real client's JSON would carry it
    response = client.post("/v1/embeddings", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


def test_body_size_limit_and_malformed_json(client: TestClient) -> None:
    big = client.post("/v1/embeddings", json={"input": "word " * 50_000, "model": "minilm"})
    assert big.status_code == 413 and "larger than this server's limit" in big.json()["error"]["message"]
    broken = client.post("/v1/embeddings", content=b'{"input": ', headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"]["type"] == "invalid_request_error"


def test_collections_lifecycle_and_search(client: TestClient) -> None:
    assert [c["name"] for c in client.get("/collections").json()] == ["papers"]
    created = client.post("/collections", json={"name": "notes", "codes": "int8", "index": "hnsw"})
    assert created.status_code == 201 and created.json()["index"].startswith("hnsw")
    assert client.post("/collections", json={"name": "notes"}).status_code == 409
    assert client.post("/collections", json={"name": "../escape"}).status_code == 422
    refused = client.post("/collections", json={"name": "graph-bits", "codes": "rabitq", "index": "hnsw"})
    assert refused.status_code == 400 and "'flat' or 'ivf'" in refused.json()["error"]["message"]
    assert client.get("/collections/graph-bits").status_code == 404  # nothing half-made
    added = client.post("/collections/notes/documents", json={"documents": _docs(30)})
    assert added.status_code == 200 and added.json()["added"] == 30
    assert client.post("/collections/notes/documents", json={"documents": _docs(1)}).status_code == 409
    upserted = client.post("/collections/notes/documents", json={"documents": _docs(2), "upsert": True}).json()
    assert upserted["updated"] == 2
    first = _docs(1)[0]
    assert client.get(f"/collections/notes/documents/{first['id']}").json()["text"] == first["text"]
    for mode in ("dense", "sparse", "hybrid"):
        hits = client.post(
            "/collections/notes/search", json={"query": first["metadata"]["title"], "k": 3, "mode": mode}
        ).json()["hits"]
        assert hits[0]["id"] == first["id"], mode
    filtered = client.post(
        "/collections/notes/search", json={"query": "embeddings", "k": 5, "filter": {"n": {"$gte": 20}}}
    )
    assert [h["metadata"]["n"] >= 20 for h in filtered.json()["hits"]] == [True] * 5
    assert client.delete(f"/collections/notes/documents/{first['id']}").json() == {"deleted": [first["id"]]}
    assert client.get(f"/collections/notes/documents/{first['id']}").status_code == 404
    assert client.delete(f"/collections/notes/documents/{first['id']}").status_code == 404
    gone = client.post(
        "/collections/notes/search", json={"query": first["metadata"]["title"], "k": 30, "mode": "hybrid"}
    )
    assert first["id"] not in {h["id"] for h in gone.json()["hits"]}
    assert client.post("/collections/notes/documents/delete", json={"ids": ["nope", _docs(2)[1]["id"]]}).json() == {
        "deleted": [_docs(2)[1]["id"]]
    }
    assert client.delete("/collections/notes").status_code == 204
    assert client.get("/collections/notes").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"query": "x", "filter": {"n": {"$near": 1}}}, 400, "Unknown operator '$near'"),
        ({"query": "x", "filter": {"n": 10**30}}, 400, "64-bit"),
        ({"query": "x", "k": 5000}, 400, "k must be at most 1000"),
        ({"query": "x", "mode": "fuzzy"}, 422, "mode"),
        ({"query": ""}, 422, "query"),
    ],
)
def test_bad_searches_get_4xx(client: TestClient, body: dict, status: int, words: str) -> None:
    response = client.post("/collections/papers/search", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    assert client.post("/collections/nope/search", json={"query": "x"}).status_code == 404


def test_keys_and_scopes(client: TestClient, keys: dict[str, str]) -> None:
    anonymous = client.post("/v1/embeddings", json={"input": "hi", "model": "minilm"}, headers={"Authorization": ""})
    assert anonymous.status_code == 401 and "Missing API key" in anonymous.json()["error"]["message"]
    wrong = client.get("/collections", headers={"Authorization": "Bearer nv-not-a-key"})
    assert wrong.status_code == 401
    read = {"Authorization": f"Bearer {keys['read']}"}
    assert (
        client.post("/collections/papers/search", json={"query": "sentence embeddings"}, headers=read).status_code
        == 200
    )
    denied = client.post("/collections", json={"name": "x"}, headers=read)
    assert denied.status_code == 403 and "needs 'write'" in denied.json()["error"]["message"]
    stored = Path(keys["file"]).read_text()
    assert keys["read"] not in stored and keys["write"] not in stored  # only hashes are kept
    assert client.get("/healthz", headers={"Authorization": ""}).json()["status"] == "ok"


def test_keys_created_and_revoked_take_effect_without_a_restart(client: TestClient, keys: dict[str, str]) -> None:
    store = KeyStore.open(keys["file"])
    record, secret = store.create(scope="read", name="temporary")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/collections", headers=headers).status_code == 200
    assert KeyStore.open(keys["file"]).revoke(record.id)
    refused = client.get("/collections", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert client.get("/collections", headers={"Authorization": f"Bearer {keys['read']}"}).status_code == 200


def test_metrics_count_requests_and_batches(client: TestClient) -> None:
    client.post("/v1/embeddings", json={"input": ["one", "two"], "model": "minilm"})
    text = client.get("/metrics").text
    assert 'nestvec_requests_total{method="POST",route="/v1/embeddings",status="200"}' in text
    assert "nestvec_batch_texts_count" in text and "nestvec_queue_depth" in text
    assert 'route="/collections/{name}/search"' in text  # route templates, never raw paths


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_requests_share_model_batches(encoder: nestvec.Encoder, workers: int) -> None:
    """Eight requests in flight at once are answered correctly, each with its own rows, in fewer model calls."""
    config = ServeConfig(batching=BatchPolicy(max_tokens=4096, max_wait_ms=200, workers=workers))
    # Long texts, so a model call outlasts the gaps between the threads' requests and they overlap.
    texts = [f"request number {i} about vectors " + "and the many ways to search them " * 25 for i in range(8)]
    expected = encoder.encode(texts)
    with TestClient(create_app(config)) as c:
        results: dict[int, list[float]] = {}

        def call(i: int) -> None:
            body = c.post("/v1/embeddings", json={"input": texts[i], "model": "minilm"}).json()
            results[i] = body["data"][0]["embedding"]

        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        metrics = c.get("/metrics").text
    np.testing.assert_allclose(np.array([results[i] for i in range(8)]), expected, atol=1e-5)
    batches = float(
        next(line.split()[-1] for line in metrics.splitlines() if line.startswith("nestvec_batch_texts_count"))
    )
    assert batches < 8


def test_page_is_served(client: TestClient) -> None:
    page = client.get("/", headers={"Authorization": ""})
    assert page.status_code == 200 and 'id="query"' in page.text and "/collections" in page.text
    assert "/collections/{name}/search" in json.dumps(client.get("/openapi.json").json()["paths"])


def test_auth_is_required_off_loopback(tmp_path: Path) -> None:
    check_auth("127.0.0.1", None, False)
    check_auth("::1", None, False)
    with pytest.raises(InputError, match="reachable from other machines"):
        check_auth("0.0.0.0", None, False)
    check_auth("0.0.0.0", None, True)
    check_auth("0.0.0.0", tmp_path / "keys.json", False)


def test_a_collection_named_twice_is_opened_once(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    from nestvec.serve.catalog import Catalog
    from nestvec.serve.encoders import ServedEncoders
    from nestvec.serve.metrics import Metrics

    with nestvec.Collection.create(tmp_path / "data" / "notes", model=encoder) as notes:
        notes.add(paper_docs(3))
    encoders = ServedEncoders(ServeConfig(), Metrics())
    catalog = Catalog([tmp_path / "data" / "notes"], data_dir=tmp_path / "data", encoders=encoders)
    try:
        assert catalog.names() == ["notes"] and len(catalog.get("notes")) == 3
    finally:
        catalog.close()
    with nestvec.Collection.create(tmp_path / "elsewhere" / "notes", model=encoder):
        pass
    with pytest.raises(InputError, match="both be served as 'notes'"):
        Catalog([tmp_path / "elsewhere" / "notes"], data_dir=tmp_path / "data", encoders=encoders)
    encoders.close()


def _batches(client: TestClient) -> float:
    metrics = client.get("/metrics").text
    return float(
        next(line.split()[-1] for line in metrics.splitlines() if line.startswith("nestvec_batch_texts_count"))
    )


def test_collections_embed_through_the_servers_encoder_and_batcher(tmp_path: Path) -> None:
    """--compute int8 applies to a served collection's queries and writes; a mismatch is refused at start-up."""
    int8 = nestvec.load_encoder("minilm", compute="int8")
    with nestvec.Collection.create(tmp_path / "fast", model=int8) as fast:
        fast.add(paper_docs(40))
    config = ServeConfig(collections=(tmp_path / "fast",), compute="int8")
    with TestClient(create_app(config)) as c:
        state = c.app.state.nestvec  # type: ignore[attr-defined]
        served = state.catalog.get("fast").encoder
        assert served is state.encoder and served.identity.details["compute"] == "int8"
        before = _batches(c)
        doc = paper_docs(3)[2]
        hits = c.post("/collections/fast/search", json={"query": doc.text[:300], "k": 1}).json()["hits"]
        assert hits[0]["id"] == doc.id and _batches(c) == before + 1  # the query went through the batcher
        new = {"id": "x", "text": "A brand new note about int8 networks."}
        assert c.post("/collections/fast/documents", json={"documents": [new]}).status_code == 200
        assert _batches(c) == before + 2
    with nestvec.Collection.create(tmp_path / "exact", model="minilm") as exact:
        exact.add(paper_docs(5))
    with pytest.raises(nestvec.RecipeMismatchError, match=r"--compute int8.*built with compute fp32"):
        create_app(ServeConfig(collections=(tmp_path / "exact",), compute="int8"))


def test_http_create_takes_every_recipe_field(tmp_path: Path) -> None:
    config = ServeConfig(data_dir=tmp_path)
    with TestClient(create_app(config)) as c:
        body = {"name": "white", "whiten": True, "dims": 64, "index": "hnsw", "codes": "int8", "rescore": 0}
        created = c.post("/collections", json=body)
        assert created.status_code == 201, created.text
        recipe = nestvec.Collection.open(tmp_path / "white").recipe
        assert str(recipe) == "minilm:dims=64:whiten=yes:index=hnsw:codes=int8:rescore=0"
        bad = c.post("/collections", json={"name": "bad", "recipe": "dims=64:bits=4"})
        assert bad.status_code == 400 and "not understood" in bad.json()["error"]["message"]
        assert c.post("/collections", json={"name": "bad", "spill": 101}).status_code == 422
        # the model and compute a recipe names are honoured or refused, never silently replaced
        named = c.post("/collections", json={"name": "named", "recipe": "minilm:dims=32"})
        assert named.status_code == 201 and named.json()["dim"] == 32
        for body, message in (
            ({"recipe": "/etc:dims=5"}, "Unknown model '/etc'. Valid choices: minilm"),
            ({"recipe": "smollm2:dims=64", "model": "minilm"}, "model 'minilm' and the recipe's 'smollm2' differ"),
            ({"recipe": "minilm:compute=int8"}, "this server computes fp32 (its --compute)"),
        ):
            refused = c.post("/collections", json={"name": "bad", **body})
            assert refused.status_code == 400 and message in refused.json()["error"]["message"], refused.text
        assert sorted(p.name for p in tmp_path.iterdir()) == ["named", "white"]


def test_writes_to_a_collection_removed_under_the_server_are_refused(client: TestClient) -> None:
    import shutil

    assert client.post("/collections", json={"name": "doomed"}).status_code == 201
    assert client.post("/collections/doomed/documents", json={"documents": _docs(2)}).status_code == 200
    folder = client.app.state.nestvec.catalog.get("doomed").path  # type: ignore[attr-defined]
    shutil.rmtree(folder)
    for response in (
        client.post("/collections/doomed/documents", json={"documents": _docs(3)[2:]}),
        client.delete(f"/collections/doomed/documents/{_docs(1)[0]['id']}"),
    ):
        assert response.status_code == 404, response.text
        assert "was removed or replaced while open; nothing was written" in response.json()["error"]["message"]


def test_documents_with_their_vectors_and_search_by_vector(client: TestClient, encoder: nestvec.Encoder) -> None:
    docs = _docs(12)
    vectors = encoder.encode([d["text"] for d in docs])
    with_vectors = [{**d, "vector": v.tolist()} for d, v in zip(docs, vectors, strict=True)]
    assert client.post("/collections", json={"name": "given"}).status_code == 201
    added = client.post("/collections/given/documents", json={"documents": with_vectors})
    assert added.status_code == 200 and added.json()["added"] == 12
    query = "contrastive sentence embeddings"
    by_text = client.post("/collections/given/search", json={"query": query, "k": 3}).json()["hits"]
    by_vector = client.post(
        "/collections/given/search", json={"query_vector": encoder.encode([query])[0].tolist(), "k": 3}
    ).json()["hits"]
    assert [(h["id"], round(h["score"], 4)) for h in by_vector] == [(h["id"], round(h["score"], 4)) for h in by_text]
    for body, words in [
        ({"documents": [{**with_vectors[0], "id": "x"}, {**docs[1], "id": "y"}]}, "1 of 2 documents carry a vector"),
        ({"documents": [{**docs[0], "id": "z", "vector": [1.0] * 384}]}, "has norm 19.5959"),
        ({"documents": [{**docs[0], "id": "w", "vector": [0.5] * 4}]}, "must have shape (1, 384)"),
    ]:
        refused = client.post("/collections/given/documents", json=body)
        assert refused.status_code == 400 and words in refused.json()["error"]["message"], refused.text
    both = client.post("/collections/given/search", json={"query": "x", "query_vector": [0.0] * 384})
    assert both.status_code == 422 and "exactly one of query" in both.json()["error"]["message"]
    hybrid = {"query_vector": vectors[0].tolist(), "mode": "hybrid"}
    assert client.post("/collections/given/search", json=hybrid).status_code == 400
    assert client.get("/collections/given").json()["documents"] == 12


def test_a_search_by_vector_without_a_query_is_validated_not_crashed(client: TestClient) -> None:
    # found by schemathesis: the query text's Unicode check met the None of a search by vector
    empty = client.post("/collections/papers/search", json={"query": None, "query_vector": []})
    assert empty.status_code == 400 and "must have shape" in empty.json()["error"]["message"]
