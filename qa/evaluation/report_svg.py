"""The precision-coverage curves of a `qa eval` report as inline SVG: drawn by the page itself,
with no script and nothing loaded, so ``report.html`` stays one self-contained file.

One card per decision (the short answer, multiple choice): precision (y, 0 to 1) against
coverage (x, 0 to 1) at every bar the confidences allow
(``qa.evaluation.truthfulness.precision_coverage``),
and the point of the configured bar marked and labelled. Every string is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

# Plot geometry, in SVG user units: the plot area is [LEFT, LEFT + W] x [TOP, TOP + H].
WIDTH, HEIGHT = 380, 250
LEFT, TOP, W, H = 48, 14, 310, 190
NAMES = {"short": "short answer", "choice": "multiple choice"}


def _x(coverage: float) -> float:
    return LEFT + max(0.0, min(1.0, coverage)) * W


def _y(precision: float) -> float:
    return TOP + (1 - max(0.0, min(1.0, precision))) * H


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _axes() -> str:
    parts = []
    for i in range(5):
        v = i / 4
        y, x = _y(v), _x(v)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + W}" y2="{y:.1f}" stroke="#e6e9ec"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#59636e">{v:.2f}</text>'
            f'<text x="{x:.1f}" y="{TOP + H + 16}" text-anchor="middle" font-size="11" '
            f'fill="#59636e">{v:.2f}</text>'
        )
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{W}" height="{H}" fill="none" stroke="#8c959f"/>'
        f'<text x="{LEFT + W / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle" font-size="12" '
        'fill="#1f2328">coverage (share answered)</text>'
        f'<text x="12" y="{TOP + H / 2:.1f}" text-anchor="middle" font-size="12" fill="#1f2328" '
        f'transform="rotate(-90 12 {TOP + H / 2:.1f})">precision</text>'
    )
    return "".join(parts)


def curve_svg(name: str, block: dict[str, Any]) -> str:
    """One decision's curve: the points of ``block["curve"]`` joined in order of coverage,
    each a dot with its bar in a tooltip, and the configured bar's point ringed and labelled."""
    label = NAMES.get(name, name)
    points: list[dict[str, float]] = block.get("curve") or []
    bar = float(block.get("bar", 0.0))
    at = block.get("at_bar") or {}
    path = " ".join(f"{_x(p['coverage']):.1f},{_y(p['precision']):.1f}" for p in points)
    dots = "".join(
        f'<circle cx="{_x(p["coverage"]):.1f}" cy="{_y(p["precision"]):.1f}" r="2.5" '
        f'fill="#2f6fd0"><title>bar {p["threshold"]:.3f}: coverage {p["coverage"]:.3f}, '
        f"precision {p['precision']:.3f}</title></circle>"
        for p in points
    )
    line = (
        f'<polyline points="{path}" fill="none" stroke="#2f6fd0" stroke-width="2"/>'
        if len(points) > 1
        else ""
    )
    coverage, precision = at.get("coverage"), at.get("precision")
    if coverage and precision is not None:
        cx, cy = _x(coverage), _y(precision)
        anchor = "end" if coverage > 0.6 else "start"
        dx = -8 if anchor == "end" else 8
        mark = (
            f'<circle class="bar-point" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="none" '
            f'stroke="#d1242f" stroke-width="2.5" data-coverage="{coverage:.6g}" '
            f'data-precision="{precision:.6g}"><title>configured bar {bar:g}</title></circle>'
            f'<text x="{cx + dx:.1f}" y="{cy + 16:.1f}" text-anchor="{anchor}" font-size="11" '
            f'fill="#d1242f">bar {bar:g}</text>'
        )
    else:
        mark = (
            f'<text class="bar-point" x="{LEFT + 8}" y="{TOP + H - 8}" font-size="11" '
            f'fill="#d1242f">bar {bar:g}: nothing shown</text>'
        )
    empty = (
        ""
        if points
        else f'<text x="{LEFT + W / 2:.1f}" y="{TOP + H / 2:.1f}" text-anchor="middle" '
        'font-size="12" fill="#59636e">no candidate</text>'
    )
    return (
        f'<svg class="curve" data-decision="{escape(name)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'aria-label="{escape(label)}: precision against coverage">'
        f"{_axes()}{line}{dots}{mark}{empty}</svg>"
    )


def curves_section(decisions: dict[str, dict[str, Any]]) -> str:
    """The page's section of curves, one card per decision with its figures at the bar and
    for all candidates; empty when the report has none (older runs)."""
    if not decisions:
        return ""
    cards = []
    for name, block in decisions.items():
        at, every = block.get("at_bar") or {}, block.get("all_candidates") or {}
        note = (
            '<p class="note">No confidence was given: every candidate counted as 1.0.</p>'
            if block.get("confidence") not in (None, "given")
            else ""
        )
        cards.append(
            f'<div class="card" data-decision="{escape(name)}"><h3>'
            f"{escape(NAMES.get(name, name))}</h3>{curve_svg(name, block)}"
            f'<p class="note">At the bar {float(block.get("bar", 0)):g}: coverage '
            f"{_f(at.get('coverage'))}, precision {_f(at.get('precision'))}, truthfulness "
            f"{_f(at.get('truthfulness'))}. All candidates: coverage "
            f"{_f(every.get('coverage'))}, precision {_f(every.get('precision'))}, "
            f"truthfulness {_f(every.get('truthfulness'))}.</p>{note}</div>"
        )
    return (
        "<h2>Precision and coverage</h2>"
        '<p class="note">Each dot is a confidence bar: the share of questions answered at it and '
        "the share of those right. The ringed point is the configured bar. Truthfulness counts "
        "right +1, silent 0, wrong −1.</p>"
        f'<div class="cards" data-section="curves">{"".join(cards)}</div>'
    )
