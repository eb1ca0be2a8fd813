"""The settings of qa's network edges: fetching pages and feeds, and `qa serve`."""

from __future__ import annotations

from dataclasses import dataclass

from qa.core.fields import bounded, setting


@dataclass(frozen=True)
class FetchSettings:
    # Web pages and feeds fetched by `qa ingest URL` and `qa watch` (see qa.web.fetch).
    timeout: float = bounded(
        15.0, 0.1, 3600, "Seconds to connect, and between bytes read, when fetching."
    )
    total_timeout: float = bounded(
        60.0, 0.1, 3600,
        "Seconds for one whole fetch: connecting, the headers and the body, all redirects (a "
        "page trickling a byte a second would otherwise hold a fetch, and an ingest, for ever).",
    )
    max_bytes: int = bounded(
        5_000_000, 1, 10**10,
        "A larger page or feed is refused while streaming (a news page is ~100 KB-2 MB).",
    )
    max_redirects: int = bounded(5, 0, 50, "Redirects followed at most in one fetch.")
    user_agent: str = setting(
        "qa-news-assistant/0.1 (question answering over news; honours robots.txt)",
        "The User-Agent sent with every fetch (and matched against robots.txt).",
    )
    min_words: int = bounded(
        40, 0, 100_000, "Extracted text shorter than this many words is not an article."
    )
    interval: float = bounded(
        900.0, 1, 30 * 86400, "Seconds between two polls of one feed by `qa watch`."
    )
    max_backoff: float = bounded(
        6 * 3600.0, 1, 30 * 86400, "Longest wait, in seconds, after repeated errors of one feed."
    )
    allowed_networks: tuple[str, ...] = setting(
        (),
        "Only public addresses are fetched from (the URLs come from feeds, redirects and API "
        "requests: see qa.web.guard), and these networks too, e.g. `[\"10.20.0.0/16\"]` for "
        "an intranet news site; `[\"0.0.0.0/0\", \"::/0\"]` allows every address.",
    )


@dataclass(frozen=True)
class ServerSettings:
    host: str = setting("127.0.0.1", "The address `qa serve` binds (`--public` for others).")
    port: int = bounded(8000, 0, 65_535, "The port `qa serve` listens on.")
    max_body_bytes: int = bounded(
        65536, 1024, 10**9, "A larger request body is refused with 413."
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        "Host names clients may use besides the bound address and the localhost names (a "
        "DNS-rebinding page reaches the server under its own name, so others are refused with "
        "400); \"*\" accepts any.",
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        "Web origins allowed to call the API from their pages (CORS); empty: none but the "
        "server's own page.",
    )
    # Slow clients: when max_connections are open, the connection that has been sending its
    # request the longest is closed to make room (an idle kept-alive one when none is), and
    # one client address may have at most max_waiting_per_client connections still sending
    # their request: its oldest are closed first (see qa.serving.server).
    header_timeout: float = bounded(
        10.0, 0.1, 3600,
        "Seconds for the request head to arrive after the connection (or after its first byte "
        "on a kept-alive one).",
    )
    body_timeout: float = bounded(
        30.0, 0.1, 3600, "Seconds for the request body to arrive after the head."
    )
    max_connections: int = bounded(
        200, 1, 100_000,
        "Open connections at most; when full, the one sending its request the longest is "
        "closed to make room (an idle kept-alive one when none is).",
    )
    max_waiting_per_client: int = bounded(
        16, 1, 100_000,
        "Connections of one client address still sending their request; over this, its oldest "
        "are closed first.",
    )
    max_concurrent_answers: int = bounded(
        4, 1, 1024,
        "Model calls running at once; more wait (without holding a thread) up to a bound, then "
        "get 503 with Retry-After. A local model answers one at a time anyway, and each waiting "
        "request would otherwise hold a worker thread.",
    )
    max_concurrent_ingests: int = bounded(
        2, 1, 1024,
        "POST /api/ingest requests running at once (each holds a worker thread while it "
        "fetches and embeds); one more gets 503 with Retry-After at once, so questions keep "
        "their threads.",
    )
    max_embedding_inputs: int = bounded(
        256, 1, 100_000, "POST /v1/embeddings: texts per request at most (else 400)."
    )
    max_embedding_chars: int = bounded(
        8192, 1, 10**7,
        "POST /v1/embeddings: characters per text at most (else 400; a chunk is ~1,000 "
        "characters).",
    )
    max_embedding_body_bytes: int = bounded(
        4_000_000, 1024, 10**10,
        "POST /v1/embeddings: its body cap in place of max_body_bytes (else 413; a batch of "
        "chunks is larger than a question, and non-ASCII text arrives as \\uXXXX escapes, 6 "
        "bytes a character).",
    )
    message_format: str = setting(
        "markdown",
        "How /v1/chat/completions writes the answer in the message text, the one thing every "
        "chat client shows (Open WebUI, LibreChat and `llm` ignore the extra fields): "
        "\"markdown\" puts the short answer in bold first, then the cited sentences, then "
        "numbered sources with the quoted span, title, outlet, date and link; \"plain\" gives "
        "the sentences and \"Sources: [n] title (date)\" lines.",
    )
