"""`qa eval` reports as self-contained HTML pages: bar charts a reader takes in at a glance.

``render_report`` draws one run (the summary figures, the precision-coverage curves of the
short answer and multiple choice as inline SVG (``qa.evaluation.report_svg``), then each metric per
question
type or per RealTime QA week, and per gold question kind); ``render_compare`` draws two runs
side by side with the difference coloured by whether it is an improvement. The pages are plain
HTML, CSS and inline SVG: no script, nothing fetched from another host (a
Content-Security-Policy forbids both), so a report opens anywhere, offline.
Every string that comes from a report (settings, run names, type labels, metric names) is
escaped: a report is data, and a page is opened in a browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from qa.core.types import QAError
from qa.evaluation.report_svg import curves_section


@dataclass(frozen=True)
class Metric:
    label: str
    meaning: str
    higher_is_better: bool | None  # None: neither (a property of the data, or unknown)


METRICS: dict[str, Metric] = {
    "exact_match": Metric("exact match", "the answer equals an accepted answer", True),
    "contains": Metric("contains answer", "an accepted answer appears in the answer", True),
    "f1": Metric("token F1", "word overlap of the answer with the best gold answer", True),
    "em": Metric("free-text exact match", "the free-text answer equals the gold answer", True),
    "evidence_recall": Metric(
        "evidence recall@k", "all evidence spans lie in the k passages given to the model", True
    ),
    "mrr": Metric("MRR", "1 / rank of the first passage holding evidence", True),
    "citation_precision": Metric(
        "citation precision", "share of cited passages that hold evidence (answered only)", True
    ),
    "citation_recall": Metric(
        "citation recall", "share of evidence spans inside a cited passage (answered only)", True
    ),
    "unanswerable_refused": Metric(
        "unanswerable refused", "share of unanswerable questions refused", True
    ),
    "answerable_refused": Metric(
        "answerable wrongly refused", "share of answerable questions refused", False
    ),
    "answer_recall": Metric(
        "answer recall@k", "a retrieved passage contains the gold answer text", True
    ),
    "oracle": Metric(
        "oracle", "the gold text occurs somewhere in the indexed articles, chance matches too", None
    ),
    "search_oracle": Metric(
        "search oracle",
        "the gold text occurs in an article the benchmark's search gave this question",
        None,
    ),
    "mc_accuracy": Metric("multiple-choice accuracy", "the right option was picked", True),
    "mc_abstained": Metric("multiple choice abstained", "no option was picked", False),
    "short_answered": Metric("short answer coverage", "share given a short answer", None),
    "short_right": Metric("short answer precision", "share of shown short answers right", True),
    "short_truth": Metric(
        "short answer truthfulness", "right +1, none 0, wrong −1 (unanswerable: any is wrong)", True
    ),
    "mc_answered": Metric("multiple-choice coverage", "share where an option was picked", None),
    "mc_right": Metric("multiple-choice precision", "share of picks that are right", True),
    "mc_truth": Metric("multiple-choice truthfulness", "right +1, abstain 0, wrong −1", True),
    "answer_answered": Metric("answer coverage", "share answered at all", None),
    "answer_right": Metric(
        "answer precision", "share of answers where an accepted answer appears", True
    ),
    "answer_truth": Metric(
        "answer truthfulness", "right +1, refused 0, wrong −1 (unanswerable: any is wrong)", True
    ),
    "latency_p50": Metric("latency p50 (ms)", "median time per question", False),
    "latency_p95": Metric("latency p95 (ms)", "95th percentile of time per question", False),
}
GROUP_NAMES = {"gold": "question type", "realtimeqa": "week"}

CSS = """
body{font:15px/1.45 system-ui,sans-serif;color:#1f2328;margin:2rem auto;max-width:72rem;
padding:0 1rem}h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:2rem 0 .6rem}
.note{color:#59636e;margin:.2rem 0}table.settings{border-collapse:collapse;font-size:.85rem}
.settings td,.settings th{border:1px solid #d1d9e0;padding:.2rem .5rem;text-align:left;
vertical-align:top}.settings code{white-space:pre-wrap;word-break:break-all}
.row{display:grid;grid-template-columns:17rem 1fr;gap:.8rem;align-items:center;margin:.35rem 0}
.row.pair{grid-template-columns:17rem 1fr 9.5rem}.name{font-weight:600}
.meaning{display:block;font-weight:400;font-size:.8rem;color:#59636e}
.dir{font-weight:400;font-size:.8rem;color:#59636e;white-space:nowrap}
.track{position:relative;background:#f0f2f4;height:1.5rem;border-radius:3px;display:flex;
align-items:center}.ab{display:grid;grid-template-columns:1rem 1fr;gap:3px .3rem;
align-items:center}.bar{height:100%;background:#2f6fd0;border-radius:3px;display:flex;
align-items:center;justify-content:flex-end;flex-shrink:0}.bar.a{background:#8c959f}
.value{font-size:.8rem;font-weight:600;padding:0 .4rem;white-space:nowrap}
.bar .value{color:#fff}.run{font-size:.75rem;font-weight:600;color:#59636e}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem}
.card{border:1px solid #d1d9e0;border-radius:6px;padding:.6rem .8rem}
.card h3{font-size:1rem;margin:0}.card .row{grid-template-columns:8rem 1fr}
.diff{font-weight:700;font-size:.9rem;white-space:nowrap}.better{color:#1a7f37}.worse{color:#cf222e}
.same{color:#59636e}.signed::before{content:"";position:absolute;left:50%;top:0;bottom:0;
border-left:1px solid #59636e}.bar.neg{background:#cf222e}.curve{max-width:100%;height:auto}
.legend span{margin-right:1.2rem}.sw{display:inline-block;width:.9rem;
height:.9rem;border-radius:2px;vertical-align:middle;margin-right:.3rem}
"""


def _metric(key: str) -> Metric:
    return METRICS.get(key, Metric(key, "", None))


def _fmt(value: float | None, *, ms: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if ms else f"{value:.3f}"


def _direction(m: Metric) -> str:
    if m.higher_is_better is None:
        return ""
    return "↑ higher is better" if m.higher_is_better else "↓ lower is better"


def _name_cell(key: str, *, explain: bool = True) -> str:
    m = _metric(key)
    meaning = f'<span class="meaning">{escape(m.meaning)}</span>' if m.meaning and explain else ""
    return (
        f'<div class="name" title="{escape(m.meaning)}">{escape(m.label)} '
        f'<span class="dir">{escape(_direction(m))}</span>{meaning}</div>'
    )


def _signed(key: str) -> bool:
    """A truthfulness (+1 right, 0 silent, -1 wrong) is drawn from the middle of its track."""
    return key.endswith("_truth")


def _signed_bar(value: float | None, cls: str = "") -> str:
    """A bar for a value in -1..1 from a zero line in the middle: right of it when positive,
    left of it (red) when negative, its length |value| of the half track."""
    number = "" if value is None else f' data-value="{value:.6g}"'
    v = 0.0 if value is None else max(-1.0, min(1.0, value))
    width = abs(v) * 50
    left = 50 - width if v < 0 else 50
    sign = "neg" if v < 0 else ""
    return (
        f'<div class="track signed"{number}><div class="bar {cls} {sign}" '
        f'style="margin-left:{left:.2f}%;width:{width:.2f}%"></div>'
        f'<span class="value">{escape(_fmt(value))}</span></div>'
    )


def _bar(
    value: float | None, scale: float, *, ms: bool = False, cls: str = "", signed: bool = False
) -> str:
    """One horizontal bar, its width value/scale, the value printed inside it when it is wide
    enough to hold the number and just after it otherwise (``signed``: see _signed_bar)."""
    if signed:
        return _signed_bar(value, cls)
    text = escape(_fmt(value, ms=ms))
    number = "" if value is None else f' data-value="{value:.6g}"'
    width = 0.0 if value is None or scale <= 0 else max(0.0, min(1.0, value / scale)) * 100
    label = f'<span class="value">{text}</span>'
    # Inside when a third of the track is filled, so the number fits even in a narrow card.
    inside, after = (label, "") if width >= 33 else ("", label)
    return (
        f'<div class="track"{number}><div class="bar {cls}" style="width:{width:.2f}%">'
        f"{inside}</div>{after}</div>"
    )


def _scale(key: str, values: list[float | None]) -> float:
    """Shares and scores are drawn on 0..1; milliseconds (and anything else above 1) on 0..max."""
    top = max((v for v in values if v is not None), default=0.0)
    return top if key.startswith("latency") or top > 1 else 1.0


def _overall(report: dict[str, Any]) -> dict[str, float | None]:
    """The headline figures of a report: metric means, refusal shares, latency."""
    summary = report["summary"]
    figures: dict[str, float | None] = {
        k: v for k, v in summary.get("overall", {}).items() if k != "refused"
    }
    for key in ("unanswerable_refused", "answerable_refused"):
        if summary.get("refusal", {}).get(key) is not None:
            figures[key] = summary["refusal"][key]
    latency = summary.get("latency_ms", {})
    figures["latency_p50"], figures["latency_p95"] = latency.get("p50"), latency.get("p95")
    return figures


def _settings_table(columns: list[tuple[str, dict[str, Any]]]) -> str:
    keys = list(dict.fromkeys(k for _, settings in columns for k in settings))
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in columns)
    rows = []
    for key in keys:
        cells = []
        for _, settings in columns:
            value = settings.get(key, "")
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            cells.append(f"<td><code>{escape(shown)}</code></td>")
        rows.append(f"<tr><th>{escape(key)}</th>{''.join(cells)}</tr>")
    return (
        '<details><summary>Settings</summary><table class="settings">'
        f"<tr><th></th>{head}</tr>{''.join(rows)}</table></details>"
    )


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


_LEGEND = (
    '<p class="note">↑ higher is better, ↓ lower is better. Scores and shares are drawn on a '
    "0 to 1 scale, latencies against the largest shown. – means the metric does not apply; "
    "a type it does not apply to is left out of the per-type charts.</p>"
)


def render_report(report: dict[str, Any], name: str = "") -> str:
    """One run as a page: the summary figures as bars, then each metric per type (or week)."""
    summary = report["summary"]
    kind = str(report.get("kind", ""))
    group = GROUP_NAMES.get(kind, "type")
    figures = _overall(report)
    parts = [
        f"<h1>qa eval: {escape(kind)}</h1>",
        f'<p class="note">{escape(name)} · {summary.get("n", 0)} questions</p>',
        _LEGEND,
        _settings_table([("value", report.get("settings", {}))]),
        '<h2>Summary</h2><div class="chart" data-section="summary">',
    ]
    # p50 and p95 share one scale, so their bars compare; every share is on 0..1.
    latency_scale = _scale("latency", [figures["latency_p50"], figures["latency_p95"]])
    for key, value in figures.items():
        ms = key.startswith("latency")
        bar = _bar(value, latency_scale if ms else _scale(key, [value]), ms=ms, signed=_signed(key))
        parts.append(f'<div class="row" data-metric="{escape(key)}">{_name_cell(key)}{bar}</div>')
    tokens = summary.get("tokens", {})
    parts.append(
        f'</div><p class="note">Tokens: prompt {tokens.get("prompt", 0):,}, '
        f"completion {tokens.get('completion', 0):,}.</p>"
    )
    parts.append(curves_section(report.get("decisions") or {}))
    parts.append(_group_cards(summary, "by_type", f"Per {group}", "by-type"))
    if summary.get("by_kind"):
        parts.append(_group_cards(summary, "by_kind", "Per question kind", "by-kind"))
    return _page(f"qa eval {kind} {name}".strip(), "".join(parts))


def _group_cards(summary: dict[str, Any], key: str, title: str, section: str) -> str:
    """One card per metric with a bar per group (question type, week or gold kind)."""
    groups: dict[str, dict[str, Any]] = summary.get(key, {})
    parts = [f'<h2>{escape(title)}</h2><div class="cards" data-section="{section}">']
    for metric in (k for k in summary.get("overall", {}) if k != "refused"):
        values = [groups[g].get(metric) for g in groups]
        if all(v is None for v in values):
            continue
        scale = _scale(metric, values)
        # A group the metric does not apply to (unanswerable questions have no answer to
        # score) gets no row rather than a row of dashes.
        rows = "".join(
            f'<div class="row" data-group="{escape(g)}"><span>{escape(g)} '
            f'<span class="dir">n={int(groups[g].get("n", 0))}</span></span>'
            f"{_bar(v, scale, signed=_signed(metric))}</div>"
            for g, v in zip(groups, values, strict=True)
            if v is not None
        )
        parts.append(
            f'<div class="card" data-metric="{escape(metric)}"><h3>{_name_cell(metric)}</h3>'
            f"{rows}</div>"
        )
    parts.append("</div>")
    return "".join(parts)


def _verdict(key: str, a: float | None, b: float | None) -> tuple[str, str]:
    """(css class, text) for the change from A to B: better, worse or same."""
    if a is None or b is None:
        return "same", "–"
    diff = b - a
    ms = key.startswith("latency")
    # Judged at the precision shown: a change too small to print is no change.
    if round(diff, 0 if ms else 3) == 0:
        return "same", "no change"
    text = f"{diff:+,.0f} ms" if ms else f"{diff:+.3f}"
    up = _metric(key).higher_is_better
    if up is None:
        return "same", text
    return ("better", f"{text} better") if (diff > 0) == up else ("worse", f"{text} worse")


def _pair_row(key: str, a: float | None, b: float | None, *, explain: bool = True) -> str:
    ms = key.startswith("latency")
    scale = _scale(key, [a, b])
    cls, text = _verdict(key, a, b)
    sg = _signed(key)
    return (
        f'<div class="row pair" data-metric="{escape(key)}">{_name_cell(key, explain=explain)}'
        + f'<div class="ab"><span class="run">A</span>{_bar(a, scale, ms=ms, cls="a", signed=sg)}'
        + f'<span class="run">B</span>{_bar(b, scale, ms=ms, cls="b", signed=sg)}'
        + f'</div><div class="diff {cls}">{escape(text)}</div></div>'
    )


def render_compare(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> str:
    """Two runs side by side: per metric a bar for A and one for B, and the change B - A
    coloured green where B is better and red where it is worse."""
    fa, fb = _overall(a), _overall(b)
    swatches = (
        f'<p class="legend"><span><span class="sw" style="background:#8c959f"></span>A: '
        f'{escape(names[0])}</span><span><span class="sw" style="background:#2f6fd0"></span>'
        f"B: {escape(names[1])}</span></p>"
    )
    parts = [
        f"<h1>qa eval: {escape(names[0])} vs {escape(names[1])}</h1>",
        swatches,
        _LEGEND + '<p class="note">The right column is B − A: <span class="better">green is better'
        '</span>, <span class="worse">red is worse</span>.</p>',
        _settings_table(
            [(f"A: {names[0]}", a.get("settings", {})), (f"B: {names[1]}", b.get("settings", {}))]
        ),
        '<h2>Summary</h2><div class="chart" data-section="summary">',
    ]
    for key in dict.fromkeys([*fa, *fb]):
        parts.append(_pair_row(key, fa.get(key), fb.get(key)))
    parts.append("</div>")
    ta, tb = a["summary"].get("by_type", {}), b["summary"].get("by_type", {})
    shared = [t for t in ta if t in tb]
    if shared:
        group = GROUP_NAMES.get(str(a.get("kind", "")), "type")
        parts.append(f'<h2>Per {escape(group)}</h2><div class="chart" data-section="by-type">')
        for t in shared:
            keys = [k for k in dict.fromkeys([*ta[t], *tb[t]]) if k not in ("n", "refused")]
            # A metric that applies to neither run's questions of this type has no bars.
            rows = [
                _pair_row(key, ta[t].get(key), tb[t].get(key), explain=False)
                for key in keys
                if ta[t].get(key) is not None or tb[t].get(key) is not None
            ]
            if rows:
                n = f"n={int(ta[t].get('n', 0))} / {int(tb[t].get('n', 0))}"
                parts.append(
                    f'<div data-group="{escape(t)}"><h3>{escape(t)} <span class="dir">{n}</span>'
                    f"</h3>{''.join(rows)}</div>"
                )
        parts.append("</div>")
    return _page(f"qa eval {names[0]} vs {names[1]}", "".join(parts))


def run_name(path: Path) -> str:
    """A run's name for a page: its folder's name (also when given its report.json)."""
    path = path.resolve()
    return path.parent.name if path.is_file() else path.name


def write_compare_page(
    a: dict[str, Any], b: dict[str, Any], names: tuple[str, str], target: Path
) -> Path:
    """Write the compare page to ``target`` (a ``.html`` file, or a folder that gets
    ``compare.html``); an existing page is never overwritten. Returns the page's path."""
    page = target if target.suffix.lower() in (".html", ".htm") else target / "compare.html"
    html = render_compare(a, b, names)
    try:
        page.parent.mkdir(parents=True, exist_ok=True)
        with open(page, "x", encoding="utf-8") as handle:  # "x": refuse to overwrite
            handle.write(html)
    except FileExistsError:
        raise QAError(f"{page} already exists; give another --out") from None
    except OSError as exc:
        raise QAError(f"cannot write {page}: {exc.strerror}") from None
    return page
