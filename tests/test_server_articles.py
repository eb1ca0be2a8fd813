"""`GET/DELETE /api/articles` and `POST /api/ingest` through a real `qa serve` on loopback,
over a real index on disk (fake embedder) and a news site the test serves itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS
from news_site import Site, article_page, serve, story

from qa.assistant import Assistant
from qa.config import load_settings
from qa.embed import FakeEmbedder
from qa.feeds import reindex
from qa.server import create_app, serve_in_thread

CONFIG = """
[paths]
corpus = "corpus"
index = "idx"

[embedding]
model = "fake"

[fetch]
timeout = 1.0
"""
SECRET = "s3cret"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "belarus.md").write_text(
        (CORPUS / "000_722e342871dc40da.md").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def server(project: Path) -> Iterator[str]:
    settings = load_settings(project / "config.toml", env={})
    embedder = FakeEmbedder(name="fake")
    reindex(settings, embedder)
    with serve_in_thread(create_app(Assistant(settings, embedder=embedder), SECRET)) as base:
        yield base


@pytest.fixture
def site() -> Iterator[Site]:
    page = article_page(
        "Harbour Bridge Opens", story("harbour bridge", "Portmere"), date="2025-06-24"
    )
    with serve({"/news/bridge": page}) as running:
        yield running


def call(method: str, url: str, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {SECRET}"}
    return httpx.request(method, url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_list_ingest_by_url_and_text_then_remove(server: str, site: Site, project: Path) -> None:
    listed = call("GET", f"{server}/api/articles").json()
    assert listed["count"] == 1

    added = call("POST", f"{server}/api/ingest", json={"urls": [site.url("/news/bridge")]})
    assert added.status_code == 200, added.text
    assert [o["status"] for o in added.json()["outcomes"]] == ["stored"]
    again = call("POST", f"{server}/api/ingest", json={"urls": [site.url("/news/bridge")]})
    assert [o["status"] for o in again.json()["outcomes"]] != ["stored"]  # a duplicate

    text = call(
        "POST",
        f"{server}/api/ingest",
        json={
            "title": "Ferry strike ends",
            "text": "The ferry workers of Portmere ended their strike on Monday after a deal "
            "on pay was reached with the harbour authority and the city council.",
            "published": "2025-06-25",
            "source": "Portmere Post",
        },
    )
    assert text.status_code == 200, text.text
    articles = call("GET", f"{server}/api/articles", params={"since": "2025-06-24"}).json()
    titles = {a["title"] for a in articles["articles"]}
    assert titles == {
        "Harbour Bridge Opens",
        "Ferry strike ends",
        "Rajnath Singh Strengthens Defence Ties with Belarus at SCO Summit",
    }
    only = call("GET", f"{server}/api/articles", params={"source": "portmere post"}).json()
    assert [a["title"] for a in only["articles"]] == ["Ferry strike ends"]

    ferry = next(a for a in articles["articles"] if a["title"] == "Ferry strike ends")
    gone = call("DELETE", f"{server}/api/articles/{ferry['id']}")
    assert gone.status_code == 200, gone.text
    assert not any(
        a["id"] == ferry["id"] for a in call("GET", f"{server}/api/articles").json()["articles"]
    )
    assert call("DELETE", f"{server}/api/articles/{ferry['id']}").status_code == 404


def test_bad_requests_are_clear_4xx(server: str) -> None:
    assert call("POST", f"{server}/api/ingest", json={}).status_code == 400
    both = call("POST", f"{server}/api/ingest", json={"urls": ["http://x"], "text": "t"})
    assert both.status_code == 400
    assert call("GET", f"{server}/api/articles", params={"since": "yesterday"}).status_code == 400
    assert httpx.get(f"{server}/api/articles", timeout=10).status_code == 401  # no key
