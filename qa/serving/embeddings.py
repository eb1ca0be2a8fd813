"""``POST /v1/embeddings`` of `qa serve`: the OpenAI embeddings protocol with the server's own
embedding model, so several machines running `qa serve` can embed for one ingest
(``embedding.backend = "openai"`` with their URLs in ``embedding.openai.base_urls``).

Request: ``{"input": str | [str, ...], "model"?, "encoding_format"?: "float" | "base64"}``.
``model`` may be left out or be ``embedding.model`` (anything else: 404 ``model_not_found``);
``dimensions`` is accepted only when it is the model's own. Response:
``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage",
"system_fingerprint"}``; base64 is the float32 little-endian bytes, as OpenAI sends them. The
fingerprint of the loaded weights rides in ``system_fingerprint`` (as in OpenAI's chat
responses), so an index built through this server and one built in-process with the same model
are interchangeable (:mod:`qa.embedding.remote`).

Limits: at most ``server.max_embedding_inputs`` texts of ``server.max_embedding_chars``
characters (400 naming ``input``), a body of ``server.max_embedding_body_bytes`` (413, by the
guard). Behind the same guards as every /v1 route (API key, Host/Origin, JSON only). The model
runs in worker threads, at most ``server.max_concurrent_answers`` requests at once; more wait
on the event loop, then get 503 with Retry-After (which clients retry).
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, field_validator

from qa.core.config import Settings
from qa.core.types import QAError
from qa.embedding.base import Embedder, embedder_identity
from qa.serving.guard import APIError, Slots, from_qa_error
from qa.serving.schemas import StrictJSONRoute


class EmbeddingsRequest(BaseModel):
    """The OpenAI fields; ``user`` and other extras are accepted and ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    input: str | list[str]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _only_text(cls, value: Any) -> Any:
        # One clear message instead of one per member of the union; token arrays (lists of
        # ints) are OpenAI's too, but this server reads text.
        if isinstance(value, str):
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a string or a list of strings (token arrays are not read)")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def check_texts(texts: list[str], settings: Settings) -> None:
    """The input limits: a clear 400 naming the first text at fault."""
    server = settings.server
    if not texts:
        raise APIError(400, "'input' is empty: send at least one text", param="input")
    if len(texts) > server.max_embedding_inputs:
        raise APIError(
            400,
            f"'input' has {len(texts)} texts; at most {server.max_embedding_inputs} per request "
            "(server.max_embedding_inputs): send smaller batches",
            param="input",
        )
    for i, text in enumerate(texts):
        if not text.strip():
            raise APIError(400, f"'input[{i}]' is empty", param=f"input[{i}]")
        if len(text) > server.max_embedding_chars:
            raise APIError(
                400,
                f"'input[{i}]' has {len(text)} characters; at most "
                f"{server.max_embedding_chars} (server.max_embedding_chars)",
                param=f"input[{i}]",
            )


def encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


def embeddings_router(settings: Settings, embedder: Embedder, wait: float) -> APIRouter:
    """The route over ``embedder``; ``wait`` is how long a request may queue for a slot."""
    router = APIRouter(route_class=StrictJSONRoute)
    slots = Slots(settings.server.max_concurrent_answers, wait, "embedding other requests")
    name = settings.embedding.model

    def run(texts: list[str]) -> tuple[np.ndarray, int, str]:
        vectors = embedder.embed(texts)
        return vectors, sum(embedder.count_tokens(texts)), embedder_identity(embedder)

    @router.post("/v1/embeddings")
    async def embeddings(body: EmbeddingsRequest) -> Response:
        if body.model not in (None, name):
            raise APIError(
                404,
                f"the model '{body.model}' does not exist; this server embeds with '{name}'",
                param="model",
                code="model_not_found",
            )
        texts = body.texts()
        check_texts(texts, settings)
        if body.dimensions is not None:
            dim = await run_in_threadpool(lambda: embedder.dim)
            if body.dimensions != dim:
                raise APIError(
                    400,
                    f"'dimensions' must be {dim} for '{name}' (it cannot be shortened)",
                    param="dimensions",
                )
        await slots.acquire()
        try:
            vectors, tokens, identity = await run_in_threadpool(run, texts)
        except QAError as exc:
            raise from_qa_error(exc, "input") from None
        finally:
            slots.release()
        data = [
            {"object": "embedding", "index": i, "embedding": encode(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "system_fingerprint": identity or None,
            }
        )

    return router
