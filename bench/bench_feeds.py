"""Benchmark feed ingest throughput (articles/s) apart from embedding.

    .venv/bin/python bench/bench_feeds.py                  # 200 articles, 3 runs, medians
    .venv/bin/python bench/bench_feeds.py --articles 500 --runs 1 --embed

A news site on loopback (tests/news_site.py: a real http.server in a thread) serves one RSS
feed of N entries and N article pages of ~4 paragraphs with metadata. Each run, in a fresh
temporary corpus and index:

* fetch only: GET of every page through qa.web.fetch.Fetcher (robots.txt, size cap, streaming);
* extract only: trafilatura on the N page bodies already in memory (qa.web.pages.extract);
* collect: the whole `qa ingest --feeds` front half (feed, fetch, extract, duplicate checks,
  front-matter file written and renamed), articles/s;
* index: read the corpus and sync the index with the hash-seeded fake embedder, so the figure
  is everything but the model (with --embed, also with the real all-MiniLM-L6-v2);
* re-poll: the same feed again, which answers 304 (nothing fetched or written).

Loopback has no network latency: real feeds are bound by the sites, not by this code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from news_site import Route, article_page, rss, serve

from qa.core.config import PathSettings, Settings
from qa.embedding.fake import FakeEmbedder
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.web.feed_state import FeedState
from qa.web.feeds import collect, read_corpus, reindex
from qa.web.fetch import Fetcher
from qa.web.pages import Catalog, extract

DATE = "Tue, 24 Jun 2025 09:00:00 GMT"
PLACES = ["Portmere", "Eastwick", "Northfield", "Southgate", "Westport", "Highbury", "Lowmoor"]
TOPICS = ["bridge", "library", "stadium", "tram line", "ferry route", "school", "hospital"]


def site_routes(n: int) -> dict[str, Route]:
    routes: dict[str, Route] = {}
    items = []
    for i in range(n):
        place, topic = PLACES[i % len(PLACES)], TOPICS[(i // len(PLACES)) % len(TOPICS)]
        paragraphs = [
            f"Story {i}, part {p}: officials in {place} said the {topic} project number {i} "
            f"would go ahead after weeks of debate among residents and the council. The budget "
            f"of {i * 3 + p} million was approved by a narrow vote on the {p}th reading, and "
            f"work should end before winter, the mayor of {place} told reporters on Tuesday."
            for p in range(1, 5)
        ]
        title = f"{place} approves {topic} project {i}"
        routes[f"/news/{i}"] = article_page(
            title, paragraphs, date="2025-06-24", author="Desk", outlet="Loopback Times"
        )
        items.append((f"/news/{i}", title, DATE))
    routes["/feed.xml"] = rss("Loopback Times", items, etag='"v1"')
    return routes


def settings_in(folder: Path) -> Settings:
    base = Settings()
    return replace(
        base,
        paths=PathSettings(corpus=folder / "corpus", index=folder / "index"),
        embedding=replace(base.embedding, model="fake"),
        fetch=replace(base.fetch, allowed_networks=("127.0.0.0/8",)),  # the site is on loopback
    )


def one_run(n: int, embedder: SentenceTransformerEmbedder | None) -> dict[str, float]:
    routes = site_routes(n)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, serve(routes) as site:
        settings = settings_in(Path(tmp))
        pages = [site.url(f"/news/{i}") for i in range(n)]

        with Fetcher(settings.fetch) as fetcher:
            t0 = time.perf_counter()
            bodies = [fetcher.get(url).body for url in pages]
            figures["fetch"] = n / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        for url, body in zip(pages, bodies, strict=True):
            extract(body, url, min_words=settings.fetch.min_words)
        figures["extract"] = n / (time.perf_counter() - t0)

        state = FeedState.for_corpus(settings.corpus_dir)
        t0 = time.perf_counter()
        outcomes = collect([], settings, feeds=[site.url("/feed.xml")], state=state)
        figures["collect"] = n / (time.perf_counter() - t0)
        stored = sum(o.status == "stored" for o in outcomes)
        if stored != n:
            raise SystemExit(f"expected {n} articles stored, got {stored}: {outcomes[:3]}")

        t0 = time.perf_counter()
        report = reindex(settings, FakeEmbedder(name="fake"))
        figures["index_fake"] = n / (time.perf_counter() - t0)
        assert report.added == n

        # As `qa watch` polls: the catalog and the HTTP client are kept between polls.
        catalog = Catalog.of_corpus(settings.corpus_dir, read_corpus(settings).documents)
        with Fetcher(settings.fetch) as fetcher:
            fetcher.get(site.url("/news/0"))  # robots.txt read, connection open
            t0 = time.perf_counter()
            again = collect(
                [],
                settings,
                feeds=[site.url("/feed.xml")],
                state=state,
                catalog=catalog,
                fetcher=fetcher,
            )
            figures["repoll_ms"] = (time.perf_counter() - t0) * 1000
        assert [o.status for o in again] == ["not_modified"]

        if embedder is not None:
            real = replace(settings, paths=replace(settings.paths, index=Path(tmp) / "real"))
            real = replace(real, embedding=Settings().embedding)
            t0 = time.perf_counter()
            reindex(real, embedder, read_corpus(real))
            figures["index_real"] = n / (time.perf_counter() - t0)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--embed", action="store_true", help="also index with the real model")
    args = parser.parse_args()
    embedder = None
    if args.embed:
        embedder = SentenceTransformerEmbedder(Settings().embedding)
        embedder.embed(["warm up"])
    runs = [one_run(args.articles, embedder) for _ in range(args.runs)]
    labels = {
        "fetch": "fetch only (HTTP GET, robots, cap)",
        "extract": "extract only (trafilatura)",
        "collect": "collect: feed + fetch + extract + store",
        "index_fake": "index, fake embedder (read, chunk, write)",
        "index_real": "index, all-MiniLM-L6-v2 (CPU)",
    }
    print(f"{args.articles} articles on loopback, median of {args.runs} runs")
    print("| stage | articles/s |\n| --- | ---: |")
    for key, label in labels.items():
        if key in runs[0]:
            print(f"| {label} | {statistics.median(r[key] for r in runs):.1f} |")
    repoll = statistics.median(r["repoll_ms"] for r in runs)
    print(f"| re-poll of the unchanged feed (304), per poll | {repoll:.1f} ms |")


if __name__ == "__main__":
    main()
