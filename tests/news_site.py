"""A small news site on loopback for the feed tests and the feed benchmark: article pages, RSS
feeds with ETags, and the bad cases (404, slow, trickling, huge, wrong type), each a route of a real
``http.server`` in a thread. Routes can be changed while it runs (a feed that gains an entry)."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""  # answered with 304 when the request's If-None-Match matches
    delay: float = 0.0  # seconds before answering (a slow server)
    repeat: int = 1  # the body is sent this many times, with no Content-Length (a huge page)
    trickle: float = 0.0  # seconds between two bytes of the body (a page that never ends)


@dataclass
class Site:
    base: str
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        """How many times ``path`` was requested."""
        return sum(p == path for p, _ in self.requests)


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = site.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.delay:
                time.sleep(route.delay)
            if route.etag and self.headers.get("If-None-Match") == route.etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            if route.etag:
                self.send_header("ETag", route.etag)
            for key, value in route.headers.items():
                self.send_header(key, value)
            if route.repeat == 1 and "Content-Length" not in route.headers:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            try:
                if route.trickle:
                    for i in range(len(route.body)):
                        self.wfile.write(route.body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(route.trickle)
                    return
                for _ in range(route.repeat):
                    self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading (the size cap): expected

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(routes: dict[str, Route] | None = None) -> Iterator[Site]:
    """Serve ``routes`` on 127.0.0.1 on a free port for the duration of the block."""
    site = Site(base="", routes=dict(routes or {}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def article_page(
    title: str, paragraphs: list[str], *, date: str = "", author: str = "", outlet: str = ""
) -> Route:
    """An article page with the usual metadata in <meta> tags, plus navigation and footer."""
    meta = []
    if outlet:
        meta.append(f'<meta property="og:site_name" content="{html.escape(outlet)}">')
    if author:
        meta.append(f'<meta name="author" content="{html.escape(author)}">')
    if date:
        meta.append(f'<meta property="article:published_time" content="{date}T08:00:00Z">')
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    page = (
        f"<!doctype html><html><head><title>{html.escape(title)}</title>{''.join(meta)}</head>"
        f"<body><nav><a href='/'>Home</a> | <a href='/world'>World</a></nav>"
        f"<article><h1>{html.escape(title)}</h1>{body}</article>"
        f"<footer>Copyright 2025 {html.escape(outlet)}</footer></body></html>"
    )
    return Route(body=page.encode("utf-8"))


def rss(title: str, items: list[tuple[str, str, str]], *, etag: str = "") -> Route:
    """An RSS 2.0 feed of (link, title, RFC 822 date) items."""
    entries = "".join(
        f"<item><title>{html.escape(t)}</title><link>{html.escape(link)}</link>"
        f"<pubDate>{d}</pubDate></item>"
        for link, t, d in items
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{html.escape(title)}</title><link>http://example.invalid/</link>"
        f"<description>news</description>{entries}</channel></rss>"
    )
    return Route(body=xml.encode("utf-8"), content_type="application/rss+xml", etag=etag)


def story(topic: str, place: str, n: int = 3) -> list[str]:
    """``n`` distinct paragraphs of plausible news text about ``topic`` in ``place``."""
    return [
        f"Officials in {place} said on Tuesday that the {topic} would go ahead as planned, "
        f"after weeks of debate among residents, business owners and the regional council. "
        f"Paragraph {i} adds that the budget for the {topic} was approved by a narrow vote and "
        f"that work should be finished before the end of the year, according to the mayor."
        for i in range(1, n + 1)
    ]
