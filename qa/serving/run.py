"""Running `qa serve`: listen on loopback unless told otherwise, check the port before the
models load, warm the index and models up, then serve the app (qa/serving/app.py) on uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import replace

import uvicorn

from qa.answering.assistant import Assistant
from qa.core.config import Settings
from qa.core.types import QAError
from qa.index import index_location, index_version
from qa.serving.app import create_app
from qa.serving.server import check_port_free, uvicorn_config

log = logging.getLogger("qa.serving.app")


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_public: bool) -> None:
    """Refuse to listen beyond this machine unless asked to explicitly."""
    if not allow_public and not is_loopback(host):
        raise QAError(
            f"refusing to listen on {host}: it is reachable from other machines. Pass --public "
            "to allow it (and set QA_API_KEY so that only clients with the key can ask)"
        )


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    allow_public: bool = False,
) -> None:
    """Run the server until interrupted (`qa serve`). ``host``/``port`` default to
    ``settings.server``; the bearer token comes from ``QA_API_KEY``."""
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    check_host(host, allow_public)
    check_port_free(host, port)  # before the models load: a busy port fails at once
    settings = replace(settings, server=replace(settings.server, host=host, port=port))
    api_key = os.environ.get("QA_API_KEY", "").strip() or None
    if not is_loopback(host):
        if api_key is None:
            log.warning("listening on %s without QA_API_KEY: anyone who can reach it can ask", host)
        if not settings.server.allowed_hosts:
            log.warning(
                "only localhost names are accepted in the Host header: list the names clients "
                "use for this machine in server.allowed_hosts"
            )
    assistant = Assistant(settings)
    warm_up(assistant)
    app = create_app(assistant, api_key)
    uvicorn.Server(uvicorn_config(app, settings.server, host, port, log_level="info")).run()


def warm_up(assistant: Assistant) -> None:
    """Load the index and models now rather than on the first request (no index: skip)."""
    if index_version(assistant.settings) is None:
        log.warning("no index at %s yet: run `qa ingest`", index_location(assistant.settings))
        try:  # a server that only embeds (for ingests elsewhere) is ready at once too
            assistant.embedder.embed(["warm up"])
        except QAError as exc:
            log.warning("embedding warm-up failed: %s", exc)
        return
    try:
        assistant.retrieve("warm up")
        _ = assistant.llm
    except QAError as exc:
        log.warning("warm-up failed: %s", exc)
