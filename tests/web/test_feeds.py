"""Feeds and pages in, against a news site served on loopback by the test: articles stored as
front-matter corpus files and indexed; every bad URL reported and skipped; nothing stored
twice or half-way; ETags honoured; `qa watch` with backoff; a running Assistant answers from
a watch cycle's new article."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from feed_helpers import DATE, news_routes, settings_in
from news_site import Route, Site, rss, serve, story

from qa.core.config import Settings
from qa.core.types import QAError
from qa.embedding.fake import FakeEmbedder
from qa.index import LocalIndex
from qa.ingest import corpus, read_paths
from qa.web.feeds import DUPLICATE, FAILED, NOT_MODIFIED, STORED, add_text, ingest_urls, parse_feed
from qa.web.fetch import FetchError
from qa.web.watch import Schedule, watch


def run(site: Site, settings: Settings, *urls: str, feeds: tuple[str, ...] = ()) -> dict:
    report = ingest_urls(
        [site.url(u) for u in urls],
        settings,
        FakeEmbedder(name="fake"),
        feeds=[site.url(f) for f in feeds],
    )
    return {"report": report, "by_url": {o.url: o for o in report.outcomes}}


def test_feed_and_pages_go_in_and_bad_urls_are_reported(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with serve(news_routes()) as site:
        result = run(
            site,
            settings,
            "/news/stadium",
            "/not-a-feed.xml",
            "/huge",
            "/nowhere",
            feeds=("/feed.xml",),
        )
    report, by_url = result["report"], result["by_url"]
    status = {url.removeprefix(site.base): o.status for url, o in by_url.items()}
    assert status == {
        "/news/stadium": STORED,
        "/not-a-feed.xml": FAILED,
        "/huge": FAILED,
        "/nowhere": FAILED,
        "/news/bridge": STORED,
        "/news/library": STORED,
        "/news/missing": FAILED,
        "/news/menu": FAILED,
        "/news/report.pdf": FAILED,
        "/news/bridge-copy": DUPLICATE,
    }
    reason = {url.removeprefix(site.base): o.detail for url, o in by_url.items()}
    assert reason["/not-a-feed.xml"].startswith("not an RSS or Atom feed")
    assert reason["/huge"].startswith("too large")
    assert reason["/nowhere"] == reason["/news/missing"] == "HTTP 404"
    assert reason["/news/menu"].startswith("not an article: 2 words")
    assert reason["/news/report.pdf"] == "not an HTML page (content type 'application/pdf')"
    assert reason["/news/bridge-copy"].startswith("same text as ")
    assert by_url[site.url("/news/bridge")].feed == site.url("/feed.xml")

    # Stored as the front-matter Markdown a user would write, nothing else left behind.
    stored = sorted((settings.corpus_dir / "web").rglob("*"))
    files = [p for p in stored if p.is_file()]
    # The feed's validators are not kept (some entries failed): no .feeds.json written either.
    assert [p.name for p in files if p.name.startswith(".")] == []
    articles = {d.url: d for d in read_paths([settings.corpus_dir]).documents}
    bridge = articles[site.url("/news/bridge")]
    assert (bridge.title, bridge.published, bridge.source) == (
        "Harbour Bridge Opens",
        "2025-06-24",
        "Portmere Post",
    )
    text = Path(bridge.path).read_text(encoding="utf-8")
    assert "author: Ada Lane" in text and text.startswith("---\ntitle: Harbour Bridge Opens\n")
    library = articles[site.url("/news/library")]
    assert library.published == "2025-06-24"  # the page gives no date: the feed's is used
    assert len(articles) == 3

    # ... and indexed, with ids relative to the corpus folder as `qa ingest` gives them.
    assert report.sync is not None and report.sync.added == 3
    index = LocalIndex.open(settings.index_dir)
    assert index.manifest["counts"]["articles"] == 3
    assert all(d.startswith("web/127.0.0.1/") for d in index.manifest["docs"])


def test_nothing_is_fetched_or_stored_twice(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with serve(news_routes()) as site:
        run(site, settings, "/news/stadium", feeds=("/feed.xml",))
        fetched_once = site.hits("/news/bridge")
        # Some entries failed, so no ETag was kept: the feed is read again, but no stored
        # link is fetched again.
        assert not (settings.corpus_dir / "web" / ".feeds.json").exists()
        again = run(site, settings, "/news/stadium", feeds=("/feed.xml",))
        assert site.hits("/news/bridge") == fetched_once == 1
        assert again["by_url"][site.url("/news/stadium")].status == DUPLICATE
        assert again["by_url"][site.url("/news/bridge")].status == DUPLICATE
        assert again["report"].sync is None  # nothing new: the index is not touched
        # Some entries failed, so the feed's ETag was not kept (they are retried at the next
        # poll). Once every entry of the feed is in, its ETag is kept and it answers 304.
        site.routes["/feed.xml"] = rss(
            "Portmere Post", [("/news/bridge", "Harbour Bridge Opens", DATE)], etag='"feed-v2"'
        )
        run(site, settings, feeds=("/feed.xml",))
        third = run(site, settings, feeds=("/feed.xml",))
        assert third["by_url"][site.url("/feed.xml")].status == NOT_MODIFIED
        assert site.requests[-1][1]["if-none-match"] == '"feed-v2"'
    assert LocalIndex.open(settings.index_dir).manifest["counts"]["articles"] == 3


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_in(tmp_path)

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(corpus.os, "replace", crash)
    with serve(news_routes()) as site, pytest.raises(OSError, match="disk full"):
        run(site, settings, "/news/stadium")
    assert [p for p in settings.corpus_dir.rglob("*") if p.is_file()] == []


def test_text_can_be_added_and_a_duplicate_is_refused(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    body = "\n\n".join(story("tram line", "Southgate"))
    added = add_text(
        settings,
        FakeEmbedder(name="fake"),
        title="Tram Line Extended",
        text=body,
        published="2025-06-21",
        source="Southgate Herald",
    )
    path = Path(added.stored[0].detail)
    assert path.parent == settings.corpus_dir / "web" / "text"
    assert added.sync is not None and added.sync.added == 1 and not added.sync_error
    doc = read_paths([path]).documents[0]
    assert (doc.title, doc.published, doc.source) == (
        "Tram Line Extended",
        "2025-06-21",
        "Southgate Herald",
    )
    with pytest.raises(QAError, match="duplicate: same text as"):
        add_text(settings, FakeEmbedder(name="fake"), title="Again", text=body.upper())
    with pytest.raises(QAError, match="empty"):
        add_text(settings, FakeEmbedder(name="fake"), title="x", text="  ")
    with pytest.raises(QAError, match="cannot read the date"):
        add_text(settings, FakeEmbedder(name="fake"), title="x", text="y z", published="soon")


def test_atom_feeds_parse_and_html_is_not_a_feed() -> None:
    atom = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        b'<entry><title>One</title><link href="http://127.0.0.1/a"/>'
        b"<updated>2025-06-22T10:00:00Z</updated><author><name>Bo</name></author></entry></feed>"
    )
    feed = parse_feed(atom)
    assert feed.title == "T"
    entry = feed.entries[0]
    assert (entry.link, entry.title, entry.published, entry.author) == (
        "http://127.0.0.1/a",
        "One",
        "2025-06-22",
        "Bo",
    )
    with pytest.raises(FetchError, match="not an RSS or Atom feed"):
        parse_feed(b"<html><body>hello</body></html>")
    # A feed that does not parse is an error, not an empty feed; an empty one is fine.
    with pytest.raises(FetchError, match=r"malformed feed \(XML error: unclosed token\)"):
        parse_feed(b'<rss version="2.0"><channel><title>Cut</title><ite')
    assert parse_feed(b'<rss version="2.0"><channel><title>E</title></channel></rss>').entries == ()


def test_watch_backs_off_a_failing_feed_and_resets_on_success(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    now = [1000.0]
    with serve({"/feed.xml": Route(status=500, body=b"down")}) as site:
        schedules = watch(
            [site.url("/feed.xml")],
            settings,
            FakeEmbedder(name="fake"),
            interval=60,
            cycles=1,
            clock=lambda: now[0],
        )
        assert (schedules[0].failures, schedules[0].due) == (1, 1000 + 120)
    s = Schedule("x")
    for expected in (120, 240, 480):
        s.done(0, False, 60, 400)
        assert s.due == min(expected, 400)
    s.done(0, True, 60, 400)
    assert (s.failures, s.due) == (0, 60)


def test_watch_polls_with_etags_and_indexes_each_new_article(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    routes = news_routes()
    routes["/feed.xml"] = rss("Post", [("/news/bridge", "Bridge", DATE)], etag='"v1"')
    cycles: list = []
    stop = threading.Event()

    def on_cycle(cycle: object) -> None:
        cycles.append(cycle)
        if len(cycles) == 2:  # the newsroom publishes between two polls
            site.routes["/feed.xml"] = rss(
                "Post",
                [("/news/stadium", "Stadium", DATE), ("/news/bridge", "Bridge", DATE)],
                etag='"v2"',
            )
        if len(cycles) == 3:
            stop.set()

    with serve(routes) as site:
        watch(
            [site.url("/feed.xml")],
            settings,
            FakeEmbedder(name="fake"),
            interval=0.05,
            stop=stop,
            on_cycle=on_cycle,
        )
    statuses = [[o.status for o in c.outcomes] for c in cycles]
    assert statuses == [[STORED], [NOT_MODIFIED], [STORED, DUPLICATE]]
    assert [c.sync.added if c.sync else 0 for c in cycles] == [1, 0, 1]
    assert LocalIndex.open(settings.index_dir).manifest["counts"]["articles"] == 2
    # What `qa watch` prints of each cycle says what it counted.
    from qa.cli.ingest import cycle_line

    lines = [cycle_line(c).split(";")[0] for c in cycles]
    assert lines == [
        "1 article stored, 0 articles already stored, 0 feeds unchanged, 0 failures",
        "0 articles stored, 0 articles already stored, 1 feed unchanged, 0 failures",
        "1 article stored, 1 article already stored, 0 feeds unchanged, 0 failures",
    ]
    assert cycle_line(cycles[1]).endswith("; index unchanged")


@pytest.mark.slow
def test_a_running_assistant_answers_from_a_watch_cycle(tmp_path: Path, real_embedder) -> None:
    """The real model and index: an Assistant opened before the poll answers from the article
    the poll brought in, with no restart."""
    from qa.answering.assistant import Assistant

    settings = replace(settings_in(tmp_path), embedding=Settings().embedding)
    settings = replace(settings, llm=replace(settings.llm, client="extractive"))
    routes = news_routes()
    routes["/feed.xml"] = rss("Post", [("/news/library", "Library", DATE)])
    with serve(routes) as site:
        watch([site.url("/feed.xml")], settings, real_embedder, cycles=1)
        assistant = Assistant(settings, embedder=real_embedder)
        before = assistant.ask("Which stadium plan was approved in Northfield?")
        assert all("Northfield" not in h.chunk.text for h in before.passages)
        site.routes["/feed.xml"] = rss("Post", [("/news/stadium", "Stadium", DATE)])
        watch([site.url("/feed.xml")], settings, real_embedder, cycles=1)
    after = assistant.ask("Which stadium plan was approved in Northfield?")
    assert after.answered
    assert any("Northfield" in c.quote for c in after.citations)
    assert after.citations[0].doc_id.startswith("web/127.0.0.1/")
