"""POST /rerank in Text Embeddings Inference's shape: a query and texts in, texts best first out."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from nestvec.errors import InputError
from nestvec.rerank.model import Reranker
from nestvec.serve.deps import Read, State
from nestvec.serve.encoders import InputTooLong
from nestvec.serve.schemas import Rank, RerankRequest
from nestvec.serve.state import ServerState

router = APIRouter(tags=["rerank"], dependencies=[Read])


def reranker_of(server: ServerState) -> Reranker:
    if server.reranker is None:
        raise InputError("This server has no reranker; start it with --reranker FOLDER (a CrossEncoder folder).")
    return server.reranker


@router.post("/rerank", response_model=list[Rank])
async def rerank(body: RerankRequest, server: State) -> JSONResponse:
    reranker = reranker_of(server)
    limits = server.config.limits
    if len(body.texts) > limits.max_texts:
        raise InputError(f"texts has {len(body.texts)} entries; the limit is {limits.max_texts} per request.")
    for i, text in enumerate(body.texts):
        if not text.strip():
            raise InputError(f"texts[{i}] is empty or whitespace only; send texts with content.")
        if len(text) > limits.max_chars:
            raise InputError(f"texts[{i}] has {len(text):,} characters; the limit is {limits.max_chars:,}.")
    if not body.truncate:
        counts = await run_in_threadpool(reranker.pair_tokens, body.query, body.texts)
        if long := [i for i, c in enumerate(counts) if c > reranker.max_tokens]:
            raise InputTooLong(
                f"texts[{long[0]}] with the query has {counts[long[0]]} tokens, over the model's "
                f'{reranker.max_tokens}; shorten it, or send "truncate": true.'
            )
    ranked = await run_in_threadpool(
        lambda: reranker.rank(body.query, body.texts, raw=body.raw_scores, return_text=body.return_text)
    )
    return JSONResponse([r.to_dict() for r in ranked])
