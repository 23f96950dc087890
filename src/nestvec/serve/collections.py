"""Collections over HTTP: list, create, drop, add/upsert, get, delete documents, search."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from nestvec.errors import InputError
from nestvec.recipe import fields as table
from nestvec.rerank.hits import check_depth, rerank_hits
from nestvec.serve.catalog import NotFoundError
from nestvec.serve.deps import Read, State, Write
from nestvec.serve.encoders import BatchedEncoder
from nestvec.serve.rerank import reranker_of
from nestvec.serve.schemas import (
    RECIPE_FIELDS,
    SEARCH_FIELDS,
    AddDocuments,
    AddResult,
    CollectionSummary,
    CreateCollection,
    Deleted,
    DeleteDocuments,
    DocumentOut,
    SearchRequest,
    SearchResponse,
)
from nestvec.store import Collection, Document

router = APIRouter(prefix="/collections", tags=["collections"])


@router.get("", response_model=list[CollectionSummary], dependencies=[Read])
async def list_collections(server: State) -> list[CollectionSummary]:
    return [_summary(name, server.catalog.get(name)) for name in server.catalog.names()]


@router.post("", response_model=CollectionSummary, status_code=201, dependencies=[Write])
async def create_collection(body: CreateCollection, server: State) -> CollectionSummary:
    options = {k: v for k, v in body.model_dump().items() if k in RECIPE_FIELDS and k in body.model_fields_set}
    recipe = body.recipe

    def create() -> Collection:
        return server.catalog.create(body.name, model=body.model, recipe=recipe, **options)

    collection = await run_in_threadpool(create)
    return _summary(body.name, collection)


@router.get("/{name}", response_model=CollectionSummary, dependencies=[Read])
async def get_collection(name: str, server: State) -> CollectionSummary:
    return _summary(name, server.catalog.get(name))


@router.delete("/{name}", status_code=204, dependencies=[Write])
async def drop_collection(name: str, server: State) -> None:
    await run_in_threadpool(server.catalog.drop, name)


@router.post("/{name}/documents", response_model=AddResult, dependencies=[Write])
async def add_documents(name: str, body: AddDocuments, server: State) -> AddResult:
    collection = server.catalog.get(name)
    limits = server.config.limits
    if len(body.documents) > limits.max_texts:
        raise InputError(f"{len(body.documents)} documents in one request; the limit is {limits.max_texts}.")
    for doc in body.documents:
        if len(doc.text) > limits.max_chars:
            raise InputError(
                f"Document '{doc.id}' has {len(doc.text):,} characters; the limit is {limits.max_chars:,}."
            )
    docs = [Document(d.id, d.text, d.metadata) for d in body.documents]
    given = [d.vector for d in body.documents if d.vector is not None]
    if given and len(given) != len(docs):
        raise InputError(f"{len(given)} of {len(docs)} documents carry a vector; send a vector with each, or none.")
    write = collection.upsert if body.upsert else collection.add
    vectors = given or None
    # no timeout: a started write finishes
    report = await run_in_threadpool(lambda: write(docs, vectors=vectors, progress=False))
    return AddResult(
        added=report.added,
        updated=report.updated,
        truncated=report.truncated,
        chunks=report.chunks,
        seconds=report.seconds,
    )


@router.get("/{name}/documents/{doc_id}", response_model=DocumentOut, dependencies=[Read])
async def get_document(name: str, doc_id: str, server: State) -> DocumentOut:
    found = await run_in_threadpool(server.catalog.get(name).get, [doc_id])
    if not found:
        raise NotFoundError(f"Collection '{name}' has no document '{doc_id}'.")
    return DocumentOut(id=found[0].id, text=found[0].text, metadata=found[0].metadata)


@router.delete("/{name}/documents/{doc_id}", response_model=Deleted, dependencies=[Write])
async def delete_document(name: str, doc_id: str, server: State) -> Deleted:
    deleted = await run_in_threadpool(server.catalog.get(name).delete, [doc_id])
    if not deleted:
        raise NotFoundError(f"Collection '{name}' has no document '{doc_id}'.")
    return Deleted(deleted=deleted)


@router.post("/{name}/documents/delete", response_model=Deleted, dependencies=[Write])
async def delete_documents(name: str, body: DeleteDocuments, server: State) -> Deleted:
    """Delete several documents; ids that are not stored are ignored (and not listed)."""
    return Deleted(deleted=await run_in_threadpool(server.catalog.get(name).delete, body.ids))


@router.post("/{name}/search", response_model=SearchResponse, dependencies=[Read])
async def search(name: str, body: SearchRequest, server: State) -> JSONResponse:
    collection = server.catalog.get(name)
    limits = server.config.limits
    if body.k > limits.max_k:
        raise InputError(f"k must be at most {limits.max_k}, got {body.k}.")
    given = body.model_dump(exclude_unset=True)  # fusion settings sent without mode hybrid are refused
    mode, fusion = table.search_options({k: v for k, v in given.items() if k in SEARCH_FIELDS})
    if body.query_vector is not None:
        if body.rerank:
            raise InputError("rerank reads the query text with each hit; send query, not query_vector.")
        if mode != "dense":
            raise InputError(f"query_vector searches the dense index only; mode {mode} needs a query text.")
        vector = [body.query_vector]
        found = await run_in_threadpool(lambda: collection.search_vectors(vector, k=body.k, filter=body.filter))
        return JSONResponse({"collection": name, "mode": mode, "hits": [h.to_dict() for h in found[0]]})
    assert body.query is not None  # the schema asks for one of the two
    if len(body.query) > limits.max_chars:
        raise InputError(f"The query has {len(body.query):,} characters; the limit is {limits.max_chars:,}.")
    text = body.query

    encoder = collection.encoder
    reranker = reranker_of(server) if body.rerank else None

    async def run() -> list[Any]:
        encoded = None
        if mode != "sparse" and isinstance(encoder, BatchedEncoder):
            # waits for the batcher on the loop, not a thread; the prompt as collection.search_batch would put it
            encoded = await encoder.encode_async([collection.recipe.encoder.prompt("query") + text])
        query = [text]
        depth = check_depth(body.k, body.rerank_depth) if reranker is not None else body.k
        found = await run_in_threadpool(
            lambda: collection.search_batch(
                query, k=depth, filter=body.filter, mode=mode, fusion=fusion, encoded=encoded
            )
        )
        if reranker is None:
            return found[0]
        return await run_in_threadpool(rerank_hits, reranker, text, found[0], k=body.k)

    try:
        hits = await asyncio.wait_for(run(), limits.timeout_s)
    except asyncio.TimeoutError:
        raise TimeoutError(f"The search did not finish within {limits.timeout_s:g} s.") from None
    # Built by hand, in SearchResponse's shape (what /docs shows): validating every hit again through
    # pydantic cost more than the search itself here.
    return JSONResponse({"collection": name, "mode": mode, "hits": [h.to_dict() for h in hits]})


def _summary(name: str, collection: Collection) -> CollectionSummary:
    recipe = collection.recipe
    return CollectionSummary(
        name=name,
        documents=collection.count(),
        model=recipe.identity.name if recipe.identity else recipe.model,
        dim=recipe.dim,
        index=recipe.index.describe(),
        bm25=recipe.sparse is not None,
    )
