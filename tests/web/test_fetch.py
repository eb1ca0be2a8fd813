"""The HTTP client against a real server on loopback: User-Agent, timeouts, the size cap,
bounded redirects, robots.txt, content types and conditional GETs."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from news_site import Route, serve

from qa.core.config import FetchSettings
from qa.web.fetch import Fetcher, FetchError, normalize_url

# The test site is on loopback, a network fetching refuses unless it is allowed.
SETTINGS = replace(
    FetchSettings(),
    timeout=1.0,
    max_bytes=200_000,
    max_redirects=3,
    allowed_networks=("127.0.0.0/8",),
)


def test_a_page_is_fetched_with_a_clear_user_agent() -> None:
    with serve({"/a": Route(body=b"<p>hello</p>")}) as site, Fetcher(SETTINGS) as fetcher:
        got = fetcher.get(site.url("/a"))
        assert (got.status, got.content_type, got.body) == (200, "text/html", b"<p>hello</p>")
        path, headers = site.requests[-1]
        assert path == "/a"
        assert headers["user-agent"] == SETTINGS.user_agent
        assert site.hits("/robots.txt") == 1  # asked once per origin, before the page


def test_errors_are_one_line_reasons() -> None:
    routes = {
        "/slow": Route(body=b"late", delay=3.0),
        "/gone": Route(status=410, body=b"gone"),
        "/huge": Route(body=b"x" * 100_000, repeat=500),  # 50 MB, no Content-Length
        "/declared": Route(body=b"x", headers={"Content-Length": str(50_000_000)}),
    }
    with serve(routes) as site, Fetcher(SETTINGS) as fetcher:
        cases = {
            "/missing": "HTTP 404",
            "/gone": "HTTP 410",
            "/slow": "timed out after 1 s",
            "/huge": "too large: over the cap of 200,000 bytes (fetch.max_bytes)",
            "/declared": "too large: 50,000,000 bytes, over the cap of 200,000 (fetch.max_bytes)",
        }
        for path, reason in cases.items():
            with pytest.raises(FetchError) as info:
                fetcher.get(site.url(path))
            assert str(info.value) == reason, path
    with pytest.raises(FetchError, match="not an http"):
        Fetcher(SETTINGS).get("file:///etc/passwd")


def test_redirects_are_followed_and_bounded() -> None:
    routes = {
        "/old": Route(status=301, headers={"Location": "/new"}),
        "/new": Route(body=b"moved here"),
        "/loop": Route(status=302, headers={"Location": "/loop"}),
    }
    with serve(routes) as site, Fetcher(SETTINGS) as fetcher:
        got = fetcher.get(site.url("/old"))
        assert got.url == site.url("/new") and got.body == b"moved here"
        with pytest.raises(FetchError, match="more than 3 redirects"):
            fetcher.get(site.url("/loop"))
        assert site.hits("/loop") == 4


def test_robots_txt_is_honoured() -> None:
    robots = b"User-agent: *\nDisallow: /private/\n"
    routes = {
        "/robots.txt": Route(body=robots, content_type="text/plain"),
        "/private/a": Route(body=b"secret"),
        "/public/a": Route(body=b"open"),
        "/to-private": Route(status=302, headers={"Location": "/private/a"}),
    }
    with serve(routes) as site, Fetcher(SETTINGS) as fetcher:
        assert fetcher.get(site.url("/public/a")).body == b"open"
        for path in ("/private/a", "/to-private"):  # a redirect is checked hop by hop
            with pytest.raises(FetchError, match=r"disallowed by robots\.txt"):
                fetcher.get(site.url(path))
        assert site.hits("/private/a") == 0


def test_crawl_delay_spaces_requests_to_a_site() -> None:
    robots = b"User-agent: *\nCrawl-delay: 1\n"
    routes = {"/robots.txt": Route(body=robots, content_type="text/plain"), "/a": Route()}
    with serve(routes) as site, Fetcher(SETTINGS) as fetcher:
        started = time.monotonic()
        for _ in range(3):
            fetcher.get(site.url("/a"))
        assert time.monotonic() - started >= 2.0  # two waits of 1 s between three pages


def test_unreachable_robots_txt_means_nothing_is_fetched() -> None:
    routes = {"/robots.txt": Route(status=503, body=b"down"), "/a": Route(body=b"page")}
    with serve(routes) as site, Fetcher(SETTINGS) as fetcher:
        with pytest.raises(FetchError, match=r"robots.txt unreachable \(HTTP 503\)"):
            fetcher.get(site.url("/a"))
        assert site.hits("/a") == 0


def test_conditional_get_returns_304() -> None:
    with serve({"/feed": Route(body=b"<rss/>", etag='"v1"')}) as site, Fetcher(SETTINGS) as f:
        first = f.get(site.url("/feed"))
        assert first.etag == '"v1"' and not first.not_modified
        again = f.get(site.url("/feed"), etag=first.etag)
        assert again.not_modified and again.body == b""
        assert site.requests[-1][1]["if-none-match"] == '"v1"'


def test_urls_are_compared_in_normal_form() -> None:
    assert normalize_url("HTTP://Example.COM:80/a?b=1#frag") == "http://example.com/a?b=1"
    assert normalize_url("https://example.com") == "https://example.com/"
    assert normalize_url("https://example.com:8443/x") == "https://example.com:8443/x"


def test_a_trickling_page_is_cut_at_the_total_deadline() -> None:
    """A byte every 0.2 s never trips the 1 s timeout between bytes (issue 22: such a page
    was still being read after 60 s); fetch.total_timeout cuts the whole fetch."""
    settings = replace(SETTINGS, total_timeout=1.5)
    page = Route(body=b"<p>" + b"x" * 200 + b"</p>", trickle=0.2)  # 40 s in full
    routes = {"/trickle": page, "/quick": Route(body=b"<p>ok</p>")}
    with serve(routes) as site, Fetcher(settings) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"within 1\.5 s \(fetch\.total_timeout\)"):
            fetcher.get(site.url("/trickle"))
        assert time.monotonic() - started < 3.0
        assert fetcher.get(site.url("/quick")).body == b"<p>ok</p>"  # the next one is fine
