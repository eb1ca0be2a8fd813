"""The feeds' validators file (qa.web.feed_state, ``corpus/web/.feeds.json``) through real feed
ingests from a news site on loopback: a failed ingest leaves it as it was (not created, not
rewritten, not emptied), an unreadable one is an error that keeps it, and two runs saving at
once keep each other's feeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from feed_helpers import DATE, news_routes, settings_in
from news_site import Route, Site, rss, serve

from qa.core.config import Settings
from qa.core.types import QAError
from qa.embedding.fake import FakeEmbedder
from qa.web.feed_state import FeedState
from qa.web.feeds import FAILED, NOT_MODIFIED, STORED, CollectReport, ingest_urls


def ingest(site: Site, settings: Settings, *paths: str) -> CollectReport:
    return ingest_urls([], settings, FakeEmbedder(name="fake"), feeds=[site.url(p) for p in paths])


def state_file(settings: Settings) -> Path:
    return settings.corpus_dir / "web" / ".feeds.json"


def test_a_failed_feed_ingest_writes_no_state(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    routes = news_routes()
    routes["/down.xml"] = Route(status=503, body=b"down")
    with serve(routes) as site:
        report = ingest(site, settings, "/down.xml", "/not-a-feed.xml", "/nowhere.xml")
    assert [o.status for o in report.outcomes] == [FAILED, FAILED, FAILED]
    assert not state_file(settings).exists()
    assert not (settings.corpus_dir / "web").exists()  # nothing at all was written


def test_a_failed_or_unchanged_feed_leaves_the_stored_state_untouched(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    routes = news_routes()
    routes["/feed.xml"] = rss("Post", [("/news/bridge", "Bridge", DATE)], etag='"v1"')
    with serve(routes) as site:
        assert [o.status for o in ingest(site, settings, "/feed.xml").outcomes] == [STORED]
        path = state_file(settings)
        before, stat = path.read_bytes(), path.stat()
        assert json.loads(before)[site.url("/feed.xml")]["etag"] == '"v1"'

        assert ingest(site, settings, "/feed.xml").outcomes[0].status == NOT_MODIFIED
        site.routes["/feed.xml"] = Route(status=500, body=b"oops")
        assert ingest(site, settings, "/feed.xml").outcomes[0].status == FAILED
        site.routes["/feed.xml"] = Route(body=b"<html>moved</html>", content_type="text/xml")
        assert ingest(site, settings, "/feed.xml").outcomes[0].status == FAILED
    assert path.read_bytes() == before
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == (stat.st_mtime_ns, stat.st_ino)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == [path.name]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"http://a.example/feed": {"etag": ', "cannot read the feed state"),
        (b"\xff\xfe not utf-8", "cannot read the feed state"),
        (b'["http://a.example/feed"]', "is not a JSON object of feeds' validators"),
    ],
)
def test_an_unreadable_state_is_an_error_and_is_kept(
    tmp_path: Path, content: bytes, message: str
) -> None:
    settings = settings_in(tmp_path)
    path = state_file(settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with serve(news_routes()) as site:
        with pytest.raises(QAError) as info:
            ingest(site, settings, "/feed.xml")
        assert site.requests == []  # refused before fetching anything
    assert message in str(info.value) and str(path) in str(info.value)
    assert "delete it to fetch every feed afresh" in str(info.value)
    assert path.read_bytes() == content


def test_two_runs_saving_at_once_keep_each_others_feeds(tmp_path: Path) -> None:
    path = tmp_path / "web" / ".feeds.json"
    first, second = FeedState(path), FeedState(path)  # both read the file before either saves
    first.remember("http://a.example/feed", '"a1"', "")
    second.remember("http://b.example/feed", "", "Tue, 24 Jun 2025 09:00:00 GMT")
    first.save()
    second.save()
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved == {
        "http://a.example/feed": {"etag": '"a1"', "last_modified": ""},
        "http://b.example/feed": {"etag": "", "last_modified": "Tue, 24 Jun 2025 09:00:00 GMT"},
    }
    assert FeedState(path).validators("http://a.example/feed") == ('"a1"', "")
