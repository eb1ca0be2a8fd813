"""`qa ingest URL`, `qa watch` and `qa articles list/show/remove` through the CLI, against a
news site on loopback and a real index on disk (fake embedder: no model to load)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from news_site import Route, Site, article_page, rss, serve, story
from typer.testing import CliRunner

import qa.cli
from qa.core.config import load_settings
from qa.core.types import QAError
from qa.index import LocalIndex, remove
from qa.index.articles import list_articles, remove_article

DATE = "Tue, 24 Jun 2025 09:00:00 GMT"


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(qa.cli.err, "width", 1000)
    monkeypatch.setattr(qa.cli.out, "width", 1000)
    yield


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(qa.cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def site_routes() -> dict[str, Route]:
    return {
        "/feed.xml": rss("Portmere Post", [("/news/bridge", "Harbour Bridge Opens", DATE)]),
        "/news/bridge": article_page(
            "Harbour Bridge Opens", story("harbour bridge", "Portmere"), outlet="Portmere Post"
        ),
        "/news/stadium": article_page(
            "Stadium Plan Approved",
            story("stadium plan", "Northfield"),
            date="2025-06-20",
            outlet="Northfield News",
        ),
        # An RSS feed cut off before its first item: XML that does not parse.
        "/broken.xml": Route(
            body=b'<?xml version="1.0"?><rss version="2.0"><channel><title>Cut</title><ite',
            content_type="application/rss+xml",
        ),
    }


@pytest.fixture
def site() -> Iterator[Site]:
    with serve(site_routes()) as running:
        yield running


def test_ingest_urls_then_list_show_remove(web_project: Path, site: Site) -> None:
    assert cli("ingest")[0] == 0  # the user's own article first
    feeds = web_project / "feeds.txt"
    feeds.write_text(f"# local news\n{site.url('/feed.xml')}\n\n", encoding="utf-8")
    code, stdout, stderr = cli(
        "ingest", site.url("/news/stadium"), site.url("/missing"), "--feeds", str(feeds)
    )
    assert code == 1, stderr  # one URL failed; the others went in
    assert f"failed {site.url('/missing')}: HTTP 404" in stderr
    assert stdout.startswith("2 articles stored, 1 URLs failed; 2 added")

    code, stdout, _ = cli("articles", "list", "--json")
    listed = json.loads(stdout)["articles"]
    assert [(a["published"], a["title"]) for a in listed] == [  # newest first
        ("2025-06-26", "Rajnath Singh Strengthens Defence Ties with Belarus at SCO Summit"),
        ("2025-06-24", "Harbour Bridge Opens"),  # the page has no date: the feed's
        ("2025-06-20", "Stadium Plan Approved"),
    ]
    by_title = {a["title"]: a for a in listed}
    stadium = by_title["Stadium Plan Approved"]
    assert stadium["url"] == site.url("/news/stadium")
    assert stadium["id"].startswith("web/127.0.0.1/2025-06-20-stadium-plan-approved-")
    assert stadium["chunks"] >= 1

    code, stdout, _ = cli("articles", "list", "--since", "2025-06-21", "--json")
    assert "Stadium Plan Approved" not in {a["title"] for a in json.loads(stdout)["articles"]}
    code, stdout, _ = cli("articles", "list", "--source", "northfield news", "--json")
    assert [a["title"] for a in json.loads(stdout)["articles"]] == ["Stadium Plan Approved"]

    code, stdout, _ = cli("articles", "show", stadium["id"])
    assert code == 0 and "Northfield" in stdout and stadium["path"] in stdout

    code, _, stderr = cli("articles", "remove", stadium["id"])
    assert code == 1 and "add --yes" in stderr
    assert Path(stadium["path"]).is_file()

    code, stdout, _ = cli("articles", "remove", stadium["id"], "--yes", "--json")
    assert code == 0
    removed = json.loads(stdout)
    assert removed["file_deleted"] and removed["articles"] == 2
    assert not Path(stadium["path"]).exists()
    assert not list(Path(stadium["path"]).parent.glob(".*removing"))
    # The corpus and the index agree: a plain re-ingest changes nothing.
    code, stdout, _ = cli("ingest", "--json")
    assert json.loads(stdout)["added"] == 0 and json.loads(stdout)["removed"] == 0

    # A feed or a user giving its URL again does not bring it back.
    fetched = site.hits("/news/stadium")
    code, stdout, _ = cli("ingest", site.url("/news/stadium"), "--json")
    assert site.hits("/news/stadium") == fetched
    outcome = json.loads(stdout)["outcomes"][0]
    assert (outcome["status"], outcome["detail"]) == (
        "duplicate",
        "removed earlier (listed in web/.removed.json)",
    )

    code, _, stderr = cli("articles", "show", "no/such/id")
    assert code == 1 and "no article with id 'no/such/id'" in stderr


def test_watch_runs_cycles_and_prints_json_lines(web_project: Path) -> None:
    with serve(site_routes()) as site:
        feeds = web_project / "feeds.txt"
        feeds.write_text(site.url("/feed.xml") + "\n", encoding="utf-8")
        code, stdout, _ = cli("watch", "--feeds", str(feeds), "--cycles", "1", "--json")
    assert code == 0
    cycle = json.loads(stdout.splitlines()[0])
    assert [o["status"] for o in cycle["outcomes"]] == ["stored"]
    assert cycle["sync"].startswith("2 added")  # the user's article too: never indexed yet
    code, _, stderr = cli("watch", "--feeds", str(web_project / "absent.txt"), "--cycles", "1")
    assert code == 1 and "cannot read feed list" in stderr


def test_stored_articles_survive_an_index_held_by_another_writer(
    web_project: Path, site: Site
) -> None:
    import fcntl

    settings = load_settings(web_project / "config.toml")
    settings.index_dir.mkdir(parents=True)
    with open(settings.index_dir / "LOCK", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running `qa ingest` holds it
        code, stdout, stderr = cli("ingest", site.url("/news/stadium"))
    assert code == 1
    assert "articles stored but not indexed: another `qa ingest` is writing" in stderr
    assert stdout.startswith("1 articles stored")
    code, stdout, _ = cli("ingest", "--json")  # the next ingest indexes it
    assert json.loads(stdout)["added"] == 2


def test_bad_ingest_arguments_are_refused(web_project: Path) -> None:
    code, _, stderr = cli("ingest", "http://127.0.0.1:9/x", "corpus")
    assert code == 1 and "give URLs or paths, not both" in stderr


def test_remove_refuses_a_record_of_a_bundle_and_unknown_ids(web_project: Path) -> None:
    bundle = web_project / "corpus" / "bundle.jsonl"
    bundle.write_text(
        "\n".join(
            json.dumps({"id": f"r{i}", "title": f"Item {i}", "text": p})
            for i, p in enumerate(story("ferry route", "Westport"))
        ),
        encoding="utf-8",
    )
    assert cli("ingest")[0] == 0
    settings = load_settings(web_project / "config.toml")
    with pytest.raises(QAError, match=r"one record of .*bundle\.jsonl"):
        remove_article(settings, "bundle#r0")
    before = LocalIndex.open(settings.index_dir).path
    with pytest.raises(QAError, match="no article with id nope"):
        remove(settings.index_dir, ["nope"], settings)
    assert LocalIndex.open(settings.index_dir).path == before  # nothing written
    assert len(list_articles(settings)) == 4


def test_an_upper_case_scheme_is_a_url_not_a_path(web_project: Path, site: Site) -> None:
    """Issue 22, item 13: HTTP://... was looked for as a file ("no such file or folder")."""
    upper = site.url("/news/stadium").replace("http://", "HTTP://")
    code, stdout, stderr = cli("ingest", upper)
    assert code == 0, stderr
    assert stdout.startswith("1 articles stored, 0 URLs failed")


def test_a_malformed_feed_is_an_error_not_an_empty_feed(web_project: Path, site: Site) -> None:
    """Issue 22, item 13: a feed that does not parse counted as empty (exit 0, nothing said)."""
    broken = site.url("/broken.xml")
    feeds = web_project / "feeds.txt"
    feeds.write_text(broken + "\n", encoding="utf-8")
    for args in (("ingest", broken), ("ingest", "--feeds", str(feeds))):
        code, stdout, stderr = cli(*args)
        assert code == 1, (args, stdout, stderr)
        assert f"failed {broken}: malformed feed (XML error:" in stderr
        assert stdout.startswith("0 articles stored, 1 URLs failed")
