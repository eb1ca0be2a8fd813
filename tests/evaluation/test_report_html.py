"""The HTML pages of `qa eval`: real gold-set runs (extractive client, real model, the shared
corpus index) give a report.html with a bar per metric and per question type holding the
report's values; --compare gives a page with both runs; strings from a report are escaped; and
Debian's Chromium draws the bars (screenshots are kept in the test's tmp folder)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS
from conftest import ROOT
from typer.testing import CliRunner

from qa import Assistant
from qa.cli import app
from qa.core.types import QAError
from qa.evaluation.report_html import render_compare, render_report, write_compare_page
from qa.evaluation.runner import eval_gold, eval_realtimeqa, load_gold

IDS = ("g001", "g059", "g071")  # one single, one multi, one unanswerable question
HOSTILE = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>"


class Tracks(HTMLParser):
    """Every bar track of a page: (section, metric, group, value or None), in page order."""

    VOID: ClassVar[set[str]] = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stack: list[dict[str, str | None]] = []
        self.found: list[tuple[str | None, str | None, str | None, float | None]] = []
        self.feed(html)

    def _nearest(self, name: str) -> str | None:
        return next((a[name] for a in reversed(self.stack) if a.get(name) is not None), None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "track" in (found.get("class") or "").split():
            value = found.get("data-value")
            self.found.append(
                (
                    self._nearest("data-section"),
                    self._nearest("data-metric"),
                    self._nearest("data-group"),
                    None if value is None else float(value),
                )
            )
        if tag not in self.VOID:
            self.stack.append(found)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID:
            self.stack.pop()


def figures(report: dict[str, Any]) -> dict[str, float | None]:
    """What a report's summary section must show: the metric means (not the raw refused
    share), the two refusal rates, latency p50 and p95."""
    summary = report["summary"]
    shown = {k: v for k, v in summary["overall"].items() if k != "refused"}
    shown |= {k: v for k, v in summary["refusal"].items() if v is not None}
    return shown | {
        "latency_p50": summary["latency_ms"]["p50"],
        "latency_p95": summary["latency_ms"]["p95"],
    }


@pytest.fixture(scope="module")
def runs(assistant: Assistant, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two real runs of three gold questions: k = 5 and k = 1."""
    items = [i for i in load_gold(ROOT / "eval" / "gold.jsonl") if i.id in IDS]
    assert sorted(i.type for i in items) == ["multi", "single", "unanswerable"]
    base = tmp_path_factory.mktemp("eval-runs")
    return {
        "k5": (base / "k5", eval_gold(assistant, items, base / "k5", k=5)),
        "k1": (base / "k1", eval_gold(assistant, items, base / "k1", k=1)),
    }


def test_report_page_has_a_bar_per_metric_and_per_type(runs: dict[str, Any]) -> None:
    folder, report = runs["k5"]
    html = (folder / "report.html").read_text(encoding="utf-8")
    tracks = Tracks(html).found

    summary = {metric: value for section, metric, _, value in tracks if section == "summary"}
    expected = figures(report)
    assert set(summary) == set(expected)
    for metric, value in expected.items():
        # None: a decision none of the questions has (multiple choice here), drawn as "–".
        assert summary[metric] == (None if value is None else pytest.approx(value, rel=1e-5))

    by_type = {(m, g): v for section, m, g, v in tracks if section == "by-type"}
    types = report["summary"]["by_type"]
    wanted = {
        (metric, t): types[t][metric]
        for t in types
        for metric in report["summary"]["overall"]
        if metric != "refused" and types[t][metric] is not None
    }
    assert len(wanted) >= 14  # 7 metrics for single and multi; none apply to unanswerable
    assert by_type.keys() == wanted.keys()
    for key, value in wanted.items():
        assert by_type[key] == pytest.approx(value, rel=1e-5), key
    # The reader is told what each metric means and which way is better.
    assert "evidence spans" in html and "↑ higher is better" in html
    assert "↓ lower is better" in html


def test_compare_page_shows_both_runs_and_judges_the_change(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    a, b = runs["k1"][1], runs["k5"][1]
    page = write_compare_page(a, b, ("k1", "k5"), tmp_path / "cmp")
    assert page == tmp_path / "cmp" / "compare.html"
    html = page.read_text(encoding="utf-8")
    assert "A: k1" in html and "B: k5" in html

    tracks = [t for t in Tracks(html).found if t[0] == "summary"]
    fa, fb = figures(a), figures(b)
    pairs: dict[str, list[float | None]] = {}
    for _, metric, _, value in tracks:
        assert metric is not None
        pairs.setdefault(metric, []).append(value)
    assert set(pairs) == set(fa) | set(fb)
    for metric, values in pairs.items():
        assert values == [  # the A bar, then the B bar
            pytest.approx(fa[metric], rel=1e-5) if fa.get(metric) is not None else None,
            pytest.approx(fb[metric], rel=1e-5) if fb.get(metric) is not None else None,
        ], metric
    # A hand-made pair: a rise in recall is better, a rise in wrong refusals is worse.
    worse = json.loads(json.dumps(b))
    worse["summary"]["overall"]["evidence_recall"] = 0.25
    worse["summary"]["refusal"]["answerable_refused"] = 0.5
    judged = render_compare(b, worse, ("before", "after"))
    assert 'data-metric="evidence_recall"' in judged
    row = judged.split('data-metric="evidence_recall"')[1].split('class="row')[0]
    expected = 0.25 - b["summary"]["overall"]["evidence_recall"]
    assert f'class="diff {"worse" if expected < 0 else "better"}"' in row
    row = judged.split('data-metric="answerable_refused"')[1].split('class="row')[0]
    assert 'class="diff worse"' in row and "+0.500 worse" in row

    with pytest.raises(QAError, match="already exists"):  # a page is never overwritten
        write_compare_page(a, b, ("k1", "k5"), tmp_path / "cmp")


def test_strings_from_a_report_are_escaped(runs: dict[str, Any]) -> None:
    _, report = runs["k5"]
    hostile = json.loads(json.dumps(report))
    hostile["settings"]["client"] = HOSTILE
    hostile["settings"]["index"]["path"] = HOSTILE
    hostile["summary"]["by_type"][HOSTILE] = hostile["summary"]["by_type"].pop("single")
    hostile["summary"]["overall"][HOSTILE] = 0.5
    pages = [
        render_report(hostile, HOSTILE),
        render_compare(hostile, hostile, (HOSTILE, "b")),
    ]
    for html in pages:
        assert "<script" not in html and "<img" not in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&gt;&lt;img" in html


def test_cli_compare_writes_the_page_and_says_where(
    runs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.cli

    monkeypatch.setattr(qa.cli.out, "width", 1000)
    monkeypatch.setattr(qa.cli.err, "width", 1000)
    runner = CliRunner()
    a_dir, b_dir = runs["k1"][0], runs["k5"][0]
    target = tmp_path / "pages" / "k1-vs-k5.html"
    result = runner.invoke(app, ["eval", "--compare", str(a_dir), str(b_dir), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert f"written to {target}" in result.stdout
    assert "| evidence_recall |" in result.stdout  # the Markdown table is still printed
    assert "B: k5" in target.read_text(encoding="utf-8")

    again = runner.invoke(app, ["eval", "--compare", str(a_dir), str(b_dir), "--out", str(target)])
    assert again.exit_code == 1
    assert "already exists" in again.stderr

    # Without --out: a new folder under the configured runs folder.
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nruns = "myruns"\n', encoding="utf-8")
    result = runner.invoke(
        app, ["eval", "--compare", str(a_dir), str(b_dir), "--config", str(config), "--json"]
    )
    assert result.exit_code == 0, result.output
    page = Path(json.loads(result.stdout)["page"])
    assert page.parent.parent == tmp_path / "myruns" and page.name == "compare.html"
    assert page.is_file()


def test_realtimeqa_report_has_a_bar_per_week(tmp_path: Path) -> None:
    from qa.core.config import load_settings
    from qa.embedding.fake import FakeEmbedder

    data = tmp_path / "rtqa"
    data.mkdir()
    article = {
        "url": "https://example.org/budget",
        "title": "Budget vote",
        "text": "Parliament passed the budget after a long debate about farm subsidies.",
    }
    for week in ("20240105", "20240112"):
        question = {
            "question_id": f"{week}_0",
            "question_date": f"{week[:4]}/{week[4:6]}/{week[6:]}",
            "question_sentence": "What did parliament pass after a long debate?",
            "choices": ["A tax cut", "The budget", "A treaty", "A ban"],
            "answer": ["1"],
        }
        (data / f"{week}_qa.jsonl").write_text(json.dumps(question) + "\n", encoding="utf-8")
        results = {"question_id": question["question_id"], "search_result": [article]}
        (data / f"{week}_gcs.jsonl").write_text(json.dumps(results) + "\n", encoding="utf-8")
    settings = load_settings(
        overrides={"paths.index": str(tmp_path / "idx" / "main"), "embedding.model": "fake"},
        env={},
    )
    out = tmp_path / "run"
    report = eval_realtimeqa(
        Assistant(settings, embedder=FakeEmbedder(name="fake")), data, None, out
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Per week" in html
    by_week = {(m, g): v for s, m, g, v in Tracks(html).found if s == "by-type"}
    for week in ("20240105", "20240112"):
        for metric in ("answer_recall", "mc_accuracy"):
            value = report["summary"]["by_type"][week][metric]
            assert by_week[(metric, week)] == pytest.approx(value), (metric, week)


def test_report_page_draws_the_precision_coverage_curves_as_inline_svg(
    runs: dict[str, Any],
) -> None:
    from qa.evaluation.truthfulness import Candidate, decision_report

    folder, report = runs["k5"]
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert '<svg class="curve" data-decision="short"' in html  # a real run has its curve
    assert "<script" not in html and "src=" not in html and "href=" not in html

    cands = [
        Candidate(True, 0.9, True),
        Candidate(True, 0.7, False),
        Candidate(True, 0.4, True),
        Candidate(False, None, False),
    ]
    made = json.loads(json.dumps(report))
    made["decisions"] = {
        "short": decision_report(cands, 0.5),
        "choice": decision_report(cands[:2], 0.95),  # nothing clears this bar
    }
    page = render_report(made, "curves")
    assert "<script" not in page and "default-src 'none'" in page
    short = page.split('data-decision="short"')[2].split("</svg>")[0]
    assert short.count("<circle") == 3 + 1  # a dot per bar the confidences allow, and the ring
    assert 'class="bar-point"' in short
    assert 'data-coverage="0.5" data-precision="0.5"' in short  # 0.9 and 0.7 shown at 0.5
    assert "<polyline" in short and "bar 0.5" in short
    choice = page.split('data-decision="choice"')[2].split("</svg>")[0]
    assert "bar 0.95: nothing shown" in choice
    # A truthfulness is drawn from a zero line: a negative one to the left, in red.
    assert 'data-metric="short_truth"' in page
    made["summary"]["overall"]["short_truth"] = -0.5
    row = render_report(made).split('data-metric="short_truth"')[1].split('class="row')[0]
    assert 'class="track signed" data-value="-0.5"' in row and "margin-left:25.00%" in row
    # Strings from a report stay text inside the SVG cards too.
    made["decisions"] = {HOSTILE: made["decisions"]["short"]}
    hostile = render_report(made, "x")
    assert "<script" not in hostile and "<img" not in hostile


# ---------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def _open(browser: Any, page_file: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: errors.append(f"dialog: {d.message}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    return page, errors, requests


def _drawn_shares(page: Any) -> list[tuple[float, float]]:
    """(value, drawn bar width / track width) for each 0..1 bar of the summary."""
    return page.eval_on_selector_all(
        "[data-section=summary] .row:not([data-metric^=latency]):not([data-metric$=_truth])"
        " .track[data-value]",
        "ts => ts.map(t => [Number(t.dataset.value), t.querySelector('.bar')"
        ".getBoundingClientRect().width / t.getBoundingClientRect().width])",
    )


@pytest.mark.slow
def test_pages_render_in_chromium_with_bars_of_the_right_length(
    browser: Any, runs: dict[str, Any], tmp_path: Path
) -> None:
    folder, report = runs["k5"]
    compare_page = write_compare_page(runs["k1"][1], report, ("k1", "k5"), tmp_path / "cmp.html")
    for page_file in (folder / "report.html", compare_page):
        page, errors, requests = _open(browser, page_file)
        shares = _drawn_shares(page)
        assert len(shares) >= 9, page_file
        for value, drawn in shares:
            assert drawn == pytest.approx(value, abs=0.01)
        assert any(value > 0 for value, _ in shares)
        widths = page.eval_on_selector_all(
            ".track[data-value] .bar", "bs => bs.map(b => b.getBoundingClientRect().width)"
        )
        assert sum(w > 0 for w in widths) >= 9
        shot = tmp_path / f"{page_file.stem}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert errors == [] and requests == [page_file.as_uri()]
        page.close()

    # The hostile strings show as text; nothing runs and nothing is loaded.
    hostile = json.loads(json.dumps(report))
    hostile["settings"]["client"] = HOSTILE
    evil = tmp_path / "hostile.html"
    evil.write_text(render_report(hostile, HOSTILE), encoding="utf-8")
    page, errors, requests = _open(browser, evil)
    assert page.locator("script, img").count() == 0
    assert HOSTILE in page.locator("body").inner_text()
    assert errors == [] and requests == [evil.as_uri()]
    page.close()
