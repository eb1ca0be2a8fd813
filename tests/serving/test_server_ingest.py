"""`POST /api/ingest` under load and hostile input (issue 22): parallel posts of one text, a
URL whose host climbs out of corpus/web/, the server's own paths kept from remote callers,
and ingests of trickling pages that must not starve questions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from news_site import Route, article_page, serve, story
from server_helpers import HEADLINE, SECRET, qa_serve

from qa.llm.fake import FakeLLM
from qa.web.pages import WebArticle, file_for

FERRY = (
    "The ferry workers of Portmere ended their strike on Monday after a deal on pay was "
    "reached with the harbour authority and the city council, the union said."
)


def call(method: str, url: str, timeout: float = 30, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {SECRET}"}
    return httpx.request(method, url, headers=headers, timeout=timeout, **kwargs)  # type: ignore[arg-type]


def at_once(n: int, job: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """``job(0..n-1)`` run in ``n`` threads released together."""
    start = threading.Barrier(n)

    def run(i: int) -> httpx.Response:
        start.wait()
        return job(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def stored_files(project: Path) -> list[Path]:
    return sorted((project / "corpus").rglob("*.md"))


def test_six_parallel_posts_of_one_text_store_it_once(web_project: Path) -> None:
    """Issue 22: six posts of one text gave HTTP 500s (one temporary name shared by the
    threads) and, under six titles, six stored copies (the duplicate check raced the write)."""
    overrides = {"server.max_concurrent_ingests": 6}
    before = stored_files(web_project)
    with qa_serve(web_project, overrides) as base:
        for titles in (["Ferry strike ends"] * 6, [f"Ferry strike, take {i}" for i in range(6)]):
            text = FERRY if titles[0] == titles[1] else FERRY.replace("Monday", "Friday")
            answers = at_once(
                6,
                lambda i, t=titles, x=text: call(  # type: ignore[misc]
                    "POST", f"{base}/api/ingest", json={"title": t[i], "text": x}
                ),
            )
            codes = sorted(r.status_code for r in answers)
            assert codes == [200, 400, 400, 400, 400, 400], [r.text for r in answers]
            refused = [r.json()["error"]["message"] for r in answers if r.status_code == 400]
            assert all(m.startswith("duplicate: same text as web/text/") for m in refused)
    added = [p for p in stored_files(web_project) if p not in before]
    assert len(added) == 2, added
    assert not [p for p in (web_project / "corpus").rglob(".*") if p.name != ".removed.json"]


def test_a_posted_url_cannot_climb_out_of_corpus_web(web_project: Path) -> None:
    """Issue 22: url "http://../x" was written to corpus/ instead of corpus/web/."""
    corpus = web_project / "corpus"
    for url in ("http://../x", "http://%2e%2e/x", "http://a..b/x"):
        path = file_for(corpus, WebArticle(url=url, title="Ferry", text=FERRY))
        assert path.resolve().is_relative_to((corpus / "web").resolve()), path
    before = stored_files(web_project)
    with qa_serve(web_project) as base:
        for url in ("http://../x", "http://%2e%2e/x"):
            answer = call(
                "POST", f"{base}/api/ingest", json={"title": "T", "text": FERRY, "url": url}
            )
            assert answer.status_code == 400, answer.text
            assert "invalid host name in URL" in answer.json()["error"]["message"]
    assert stored_files(web_project) == before


def test_outcomes_name_corpus_files_not_server_paths(web_project: Path) -> None:
    """Issue 22: API outcomes showed absolute server paths to remote callers."""
    page = article_page("Harbour Bridge Opens", story("harbour bridge", "Portmere"))
    with serve({"/news/bridge": page}) as site, qa_serve(web_project) as base:
        url = site.url("/news/bridge")
        stored = call("POST", f"{base}/api/ingest", json={"urls": [url]}).json()
        again = call("POST", f"{base}/api/ingest", json={"urls": [url]}).json()
        text = call("POST", f"{base}/api/ingest", json={"title": "T", "text": FERRY}).json()
        twice = call("POST", f"{base}/api/ingest", json={"title": "U", "text": FERRY}).json()
    shown = [stored, again, text, twice]
    assert str(web_project) not in repr(shown) and str(web_project.resolve()) not in repr(shown)
    assert stored["outcomes"][0]["detail"].startswith("web/127.0.0.1/")
    assert again["outcomes"][0]["detail"].startswith("already stored as web/127.0.0.1/")
    assert text["outcomes"][0]["detail"].startswith("web/text/")
    assert twice["error"]["message"].startswith("duplicate: same text as web/text/")


def test_stuck_ingests_do_not_starve_questions(web_project: Path) -> None:
    """Issue 22: 48 ingests of trickling pages took every worker thread, and /healthz,
    /api/ask and /api/articles timed out. Two ingests run at once (max_concurrent_ingests),
    the others are refused at once with Retry-After, and questions are answered meanwhile;
    the stuck fetches end at fetch.total_timeout."""
    page = article_page("Slow News", story("slow news", "Portmere"))
    overrides = {"fetch.timeout": 5.0, "fetch.total_timeout": 15.0}
    with (
        serve({f"/slow/{i}": Route(body=page.body, trickle=0.5) for i in range(50)}) as site,
        qa_serve(web_project, overrides, llm=FakeLLM()) as base,
        ThreadPoolExecutor(48) as pool,
    ):
        stuck = [
            pool.submit(
                call,
                "POST",
                f"{base}/api/ingest",
                timeout=40,
                json={"urls": [site.url(f"/slow/{i}")]},
            )
            for i in range(48)
        ]
        ends = time.monotonic() + 10  # 48 client threads start slowly on a busy machine
        while sum(f.done() for f in stuck) < 46 and time.monotonic() < ends:
            time.sleep(0.1)
        refused = [f.result() for f in stuck if f.done()]
        assert len(refused) == 46  # all but two, refused without waiting
        assert all(r.status_code == 503 and int(r.headers["retry-after"]) >= 1 for r in refused)
        assert refused[0].json()["error"]["code"] == "server_busy"
        extra = call("POST", f"{base}/api/ingest", json={"urls": [site.url("/slow/49")]})
        assert extra.status_code == 503 and int(extra.headers["retry-after"]) >= 1
        for _ in range(3):
            started = time.monotonic()
            assert call("GET", f"{base}/healthz", timeout=5).status_code == 200
            ask = call("POST", f"{base}/api/ask", timeout=5, json={"question": HEADLINE})
            assert ask.status_code == 200, ask.text
            assert call("GET", f"{base}/api/articles", timeout=5).status_code == 200
            assert time.monotonic() - started < 3.0
        running = [f for f in stuck if not f.done() or f.result().is_success]
    ended = [f.result().json() for f in running]
    details = [o["detail"] for r in ended for o in r["outcomes"]]
    assert details == ["timed out: not fetched in full within 15 s (fetch.total_timeout)"] * 2
