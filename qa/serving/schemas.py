"""Request bodies of `qa serve` as pydantic models: validation, error messages and the OpenAPI
schema come from one place.

Bodies are parsed by pydantic's own JSON parser rather than ``json.loads``: a lone UTF-16
surrogate (``"a \\ud800"``) or a body nested 60,000 deep is a clear 400 there, where
``json.loads`` hands the route a string that cannot be encoded, or raises RecursionError.
Models are strict: ``"5"`` is not a number and ``"yes"`` is not ``true``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any, Literal

import pydantic_core
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator

from qa.core.types import Filters, QAError
from qa.retrieval.filters import build_filters
from qa.serving.guard import APIError

MAX_K = 100
MAX_CHOICES = 10
MAX_SOURCES = 50
FILTER_FIELDS = ("as_of", "since", "until", "sources")

K = Annotated[int, Field(ge=1, le=MAX_K, description="passages to retrieve (1-100)")]
Day = Annotated[str | None, Field(description="a date as YYYY-MM-DD", examples=["2025-06-30"])]


# --------------------------------------------------------------------------- bodies


class FilterFields(BaseModel):
    """Which articles a question may draw on; the same fields in /api/ask and as extra fields
    of /v1/chat/completions."""

    as_of: Day = Field(None, description="the day the question is asked (default: today)")
    since: Day = Field(None, description="earliest publication date (inclusive)")
    until: Day = Field(None, description="latest publication date (inclusive)")
    sources: list[str] = Field(
        default_factory=list, max_length=MAX_SOURCES, description="only these outlets"
    )

    def filters(self) -> Filters:
        """The typed filters (as-of today when not given); a bad date is a 400 naming it."""
        try:
            return build_filters(self.as_of, self.since, self.until, self.sources)
        except QAError as exc:
            message = str(exc)
            param = next((f for f in FILTER_FIELDS if message.startswith(f)), None)
            raise APIError(400, message, param=param or "sources") from None


class AskRequest(FilterFields):
    """``POST /api/ask``: one question, answered as ``qa ask --json`` does."""

    model_config = ConfigDict(strict=True, extra="forbid")

    question: str
    k: K | None = None
    choices: list[str] = Field(
        default_factory=list, max_length=MAX_CHOICES, description="multiple-choice options"
    )


class TextPart(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _only_text(cls, value: Any) -> Any:
        # One clear message per mistake, instead of one error per member of the union.
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValueError("'content' must be a string or a list of text parts")
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise ValueError("only text content parts are supported")
            if not isinstance(part.get("text"), str):
                raise ValueError("a text content part needs a string 'text'")
        return value

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content)
        return self.content or ""


class ChatRequest(FilterFields):
    """``POST /v1/chat/completions``: the OpenAI fields qa uses; the other sampling options
    (temperature, max_tokens, ...) are accepted and ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    model: str = "qa"
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    n: int | None = 1
    k: K | None = None
    # How the answer is written in the message text (server.message_format when left out);
    # the chat page asks for "plain" and draws the short answer and sources itself.
    message_format: Literal["markdown", "plain"] | None = None

    @field_validator("messages")
    @classmethod
    def _has_user(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" for m in value):
            raise ValueError("the conversation has no user message")
        return value

    @field_validator("n")
    @classmethod
    def _one(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only n=1 is supported")
        return value

    def conversation(self) -> list[dict[str, str]]:
        """The user and assistant turns as plain dicts (system prompts do not steer qa)."""
        return [
            {"role": m.role, "content": m.text()}
            for m in self.messages
            if m.role in ("user", "assistant")
        ]

    def last_question(self) -> str:
        return next(m.text() for m in reversed(self.messages) if m.role == "user")


# --------------------------------------------------------------------------- parsing


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            raw = await self.body()
            try:
                self._json = pydantic_core.from_json(raw, allow_inf_nan=False)
            except ValueError as exc:
                # FastAPI turns this into a RequestValidationError of type json_invalid.
                raise json.JSONDecodeError(str(exc), "", 0) from None
        return self._json


class StrictJSONRoute(APIRoute):
    """Routes whose JSON bodies are read by pydantic's parser (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return route


def _param(loc: Sequence[Any]) -> str | None:
    """``("messages", 0, "role")`` -> ``"messages[0].role"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def validation_error(errors: Sequence[Any]) -> APIError:
    """The first of pydantic's errors as one OpenAI-style 400 naming the parameter."""
    first = errors[0] if errors else {}
    kind = first.get("type")
    if kind == "json_invalid":
        reason = str((first.get("ctx") or {}).get("error", "")).strip()
        if "surrogate" in reason or "hex escape" in reason:
            reason += " (a \\ud800-\\udfff escape must be half of a valid surrogate pair)"
        return APIError(400, f"the request body is not valid JSON: {reason}")
    param = _param([p for p in first.get("loc", ()) if p != "body"])
    if param is None:
        if kind == "missing":
            return APIError(400, "the request body is empty; send a JSON object")
        return APIError(400, "the request body must be a JSON object")
    if kind == "missing":
        return APIError(400, f"missing required parameter: '{param}'", param=param)
    if kind == "extra_forbidden":
        return APIError(400, f"unknown parameter '{param}'", param=param)
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return APIError(400, f"'{param}': {message}", param=param)
