"""The fake news site the feed and watch tests fetch from, and their settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conftest import fake_settings
from news_site import Route, article_page, rss, story

from qa.core.config import PathSettings, Settings

DATE = "Tue, 24 Jun 2025 09:00:00 GMT"


def settings_in(tmp_path: Path) -> Settings:
    base = fake_settings(max_tokens=80, overlap_tokens=10)
    return replace(
        base,
        paths=PathSettings(corpus=tmp_path / "corpus", index=tmp_path / "idx"),
        fetch=replace(
            base.fetch,
            timeout=1.0,
            max_bytes=300_000,
            min_words=40,
            allowed_networks=("127.0.0.0/8",),  # the test site is on loopback
        ),
    )


def news_routes() -> dict[str, Route]:
    """A feed of six links (two good articles, a 404, a page that is no article, a PDF and a
    copy of the first article under another URL), a second good article linked from nowhere,
    a feed that is not XML and a 50 MB page."""
    bridge = article_page(
        "Harbour Bridge Opens",
        story("harbour bridge", "Portmere"),
        date="2025-06-24",
        author="Ada Lane",
        outlet="Portmere Post",
    )
    return {
        "/feed.xml": rss(
            "Portmere Post",
            [
                ("/news/bridge", "Harbour Bridge Opens", DATE),
                ("/news/library", "Library Reopens", DATE),
                ("/news/missing", "Gone", DATE),
                ("/news/menu", "Menu", DATE),
                ("/news/report.pdf", "Report", DATE),
                ("/news/bridge-copy", "Harbour Bridge Opens (copy)", DATE),
            ],
            etag='"feed-v1"',
        ),
        "/news/bridge": bridge,
        "/news/bridge-copy": bridge,
        "/news/library": article_page(
            "Library Reopens", story("library renovation", "Eastwick"), outlet="Portmere Post"
        ),
        "/news/menu": Route(body=b"<html><body><ul><li>Home</li><li>About</li></ul></body>"),
        "/news/report.pdf": Route(body=b"%PDF-1.4 ...", content_type="application/pdf"),
        "/news/stadium": article_page(
            "Stadium Plan Approved", story("stadium plan", "Northfield"), date="2025-06-20"
        ),
        "/not-a-feed.xml": Route(body=b"this is not xml at all", content_type="application/xml"),
        "/huge": Route(body=b"<p>" + b"word " * 20_000 + b"</p>", repeat=500),
    }
