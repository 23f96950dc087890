"""OpenAI-compatible embeddings: POST /v1/embeddings and GET /v1/models."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from nestvec.errors import InputError
from nestvec.serve.catalog import NotFoundError
from nestvec.serve.deps import Read, State
from nestvec.serve.schemas import EmbeddingRequest, EmbeddingResponse, ModelCard, ModelList
from nestvec.serve.state import ServerState
from nestvec.transforms import Truncate

router = APIRouter(tags=["embeddings"], dependencies=[Read])


@router.get("/v1/models", response_model=ModelList)
async def models(server: State) -> ModelList:
    encoder = server.encoder
    return ModelList(data=[ModelCard(id=encoder.name, dim=encoder.dim, max_tokens=encoder.max_tokens)])


@router.post("/v1/embeddings", response_model=EmbeddingResponse)
async def embeddings(body: EmbeddingRequest, server: State) -> JSONResponse:
    _check_model(server, body.model)
    texts = _texts(server, body.input)
    if body.input_type is not None and (prompt := server.encoder.prompts.get(body.input_type)):
        texts = [prompt + t for t in texts]
    dims = body.dimensions
    if dims is not None and dims > server.encoder.dim:
        raise InputError(f"dimensions must be at most the model's {server.encoder.dim}, got {dims}.")
    vectors, used = await _embed(server, texts, truncate=body.truncate)
    if dims is not None and dims < server.encoder.dim:
        vectors = Truncate(dims).apply(vectors)
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
        for i, v in enumerate(vectors)
    ]
    usage = {"prompt_tokens": sum(used), "total_tokens": sum(used)}
    # Built by hand: validating 384 floats per text through pydantic costs more than the model at
    # high concurrency. The shape is EmbeddingResponse's, which /docs shows.
    return JSONResponse({"object": "list", "data": data, "model": server.encoder.name, "usage": usage})


async def _embed(server: ServerState, texts: list[str], *, truncate: bool) -> tuple[np.ndarray, list[int]]:
    timeout = server.config.limits.timeout_s
    try:
        return await asyncio.wait_for(server.encoder.embed(texts, truncate=truncate), timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(f"The model did not answer within {timeout:g} s; the server is overloaded.") from None


def _check_model(server: ServerState, model: str) -> None:
    encoder = server.encoder
    if model not in {encoder.name, encoder.source, server.config.model}:  # display name, registry name or path
        raise NotFoundError(f"This server serves the model '{encoder.name}' only (asked for '{model}').")


def _texts(server: ServerState, value: str | list[str] | list[int] | list[list[int]]) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not texts:
        raise InputError("input is empty: send a text or a non-empty list of texts.")
    if not all(isinstance(t, str) for t in texts):
        raise InputError("input holds token ids; this server takes text only. Send the texts themselves.")
    limits = server.config.limits
    if len(texts) > limits.max_texts:
        raise InputError(f"input has {len(texts)} texts; the limit is {limits.max_texts} per request. Split it.")
    for i, text in enumerate(texts):
        assert isinstance(text, str)
        if not text.strip():  # as collections refuse them: an empty text has no meaning to embed
            raise InputError(f"input[{i}] is empty or whitespace only; send texts with content.")
        if len(text) > limits.max_chars:
            raise InputError(f"input[{i}] has {len(text):,} characters; the limit is {limits.max_chars:,}.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"input[{i}] is not valid Unicode (it holds an unpaired surrogate).") from None
    return [str(t) for t in texts]


def _encode(vector: np.ndarray, fmt: str) -> list[float] | str:
    if fmt == "base64":  # what OpenAI's Python client asks for by default: little-endian float32
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return list(vector.tolist())
