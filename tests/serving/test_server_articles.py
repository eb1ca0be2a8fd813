"""`GET/DELETE /api/articles` and `POST /api/ingest` through a real `qa serve` on loopback,
over a real index on disk (fake embedder) and a news site the test serves itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from news_site import Route, Site, article_page, serve, story
from server_helpers import SECRET, qa_serve

from qa.web.guard import HOW_TO_ALLOW


@pytest.fixture
def server(web_project: Path) -> Iterator[str]:
    with qa_serve(web_project) as base:
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


def test_list_ingest_by_url_and_text_then_remove(server: str, site: Site) -> None:
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


def test_private_addresses_are_refused_unless_allowed(web_project: Path, site: Site) -> None:
    """The default refuses the loopback news site, the cloud metadata address and a redirect
    to it without sending them a byte; fetch.allowed_networks (on in the project's config)
    lets the intranet site in, and only it."""
    site.routes["/to-metadata"] = Route(
        status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    urls = [site.url("/news/bridge"), "http://169.254.169.254/latest/meta-data/"]
    with qa_serve(web_project, {"fetch.allowed_networks": []}) as base:
        refused = call("POST", f"{base}/api/ingest", json={"urls": urls})
        assert refused.status_code == 200, refused.text
        outcomes = {o["url"]: (o["status"], o["detail"]) for o in refused.json()["outcomes"]}
        how = f"not a public one ({HOW_TO_ALLOW})"  # its text: tests/web/test_fetch_guard.py
        assert outcomes == {
            urls[0]: ("failed", f"refused: 127.0.0.1 is a loopback address, {how}"),
            urls[1]: ("failed", f"refused: 169.254.169.254 is a link-local address, {how}"),
        }
        assert site.requests == []  # not even robots.txt
        assert call("GET", f"{base}/api/articles").json()["count"] == 1

    with qa_serve(web_project) as base:  # allowed_networks = ["127.0.0.0/8"]
        urls.append(site.url("/to-metadata"))
        allowed = call("POST", f"{base}/api/ingest", json={"urls": urls}).json()
        outcomes = {o["url"]: (o["status"], o["detail"]) for o in allowed["outcomes"]}
        assert outcomes[site.url("/news/bridge")][0] == "stored"
        assert outcomes[urls[1]][1].startswith("refused: 169.254.169.254 is a link-local")
        assert outcomes[urls[2]][1].startswith(
            "redirected to http://169.254.169.254/latest/meta-data/: refused: 169.254.169.254"
        )
        assert call("GET", f"{base}/api/articles").json()["count"] == 2
