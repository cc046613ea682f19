"""Server-side SVG charts for the dashboard: score trends (lines) and distributions (bars).

The page is drawn by the server, so charts are inline SVG rather than a JavaScript
charting library: nothing to download from a CDN, nothing for the Content-Security-Policy
to allow, and the figures are in the HTML for anyone (and any test) to read. Colours
and fonts come from the stylesheet through class names; no inline styles, which the
policy forbids. Each point and bar carries a <title>, which browsers show as a tooltip.

A chart is one image to assistive technology (role="img", named by its title), so the
tooltips, which it does not read inside an image, are also its <desc>: the accessible
description, where a screen reader finds every value the chart draws.

This module only draws: the figures arrive computed (scoring.report).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 32, 12, 34
# More x labels than this overlap at the chart's width; the others are left out.
MAX_X_LABELS = 6
# Room above the tallest bar for its count, which would otherwise be drawn on the bar,
# grey on green: unreadable (WCAG 1.4.3).
COUNT_ROOM = 14
NO_ANSWERS = "no answers in this range"


@dataclass(frozen=True)
class Point:
    label: str  # the period, e.g. 2026-11-23 or 2026-W48
    value: float | None  # None: no answers in that period, a gap in the line
    tooltip: str


@dataclass(frozen=True)
class Bar:
    label: str  # the scale point, e.g. "9"
    count: int
    kind: str  # a class name: detractor, passive, promoter, ...
    tooltip: str


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(chart_id: str, title: str, description: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>{''.join(body)}</svg>"
    )


def _label_step(count: int) -> int:
    return max(1, -(-count // MAX_X_LABELS))


def line_chart(
    points: Sequence[Point],
    *,
    chart_id: str,
    title: str,
    low: float,
    high: float,
    ticks: Sequence[float],
) -> Markup:
    """One metric over time on a fixed scale [low, high], gaps where there is no data."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        clamped = min(max(value, low), high)
        return TOP + plot_h * (high - clamped) / (high - low)

    def x(index: int) -> float:
        if len(points) == 1:
            return LEFT + plot_w / 2
        return LEFT + plot_w * index / (len(points) - 1)

    body = []
    for tick in ticks:
        body.append(
            f'<line class="grid{" zero" if tick == 0 else ""}" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
            f'y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="axis y" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{escape(_number(tick))}</text>'
        )
    step = _label_step(len(points))
    for index, point in enumerate(points):
        if index % step == 0:
            body.append(
                f'<text class="axis x" x="{x(index):.1f}" y="{HEIGHT - BOTTOM + 18}" '
                f'text-anchor="middle">{escape(point.label)}</text>'
            )
    run: list[str] = []
    for index, point in enumerate([*points, None]):
        if point is not None and point.value is not None:
            run.append(f"{x(index):.1f},{y(point.value):.1f}")
            continue
        if len(run) > 1:
            body.append(f'<polyline class="line" points="{" ".join(run)}"/>')
        run = []
    for index, point in enumerate(points):
        if point.value is None:
            continue
        body.append(
            f'<circle class="point" cx="{x(index):.1f}" cy="{y(point.value):.1f}" r="3.5" '
            f'data-label="{escape(point.label)}" data-value="{_number(point.value)}">'
            f"<title>{escape(point.tooltip)}</title></circle>"
        )
    described = [point.tooltip for point in points if point.value is not None]
    if not described:
        body.append(
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            f"{NO_ANSWERS}</text>"
        )
    return _svg(chart_id, title, "; ".join(described) or NO_ANSWERS, body)


def bar_chart(bars: Sequence[Bar], *, chart_id: str, title: str) -> Markup:
    """Counts per scale point, bars scaled to the largest; the count written above each."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    tallest = max((bar.count for bar in bars), default=0) or 1
    slot = plot_w / max(len(bars), 1)
    body = [
        f'<line class="grid zero" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
        f'y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>'
    ]
    for index, bar in enumerate(bars):
        height = (plot_h - COUNT_ROOM) * bar.count / tallest
        left = LEFT + slot * index + slot * 0.15
        top = TOP + plot_h - height
        centre = LEFT + slot * (index + 0.5)
        body.append(
            f'<rect class="bar {escape(bar.kind)}" x="{left:.1f}" y="{top:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{height:.1f}" '
            f'data-label="{escape(bar.label)}" data-count="{bar.count}">'
            f"<title>{escape(bar.tooltip)}</title></rect>"
            f'<text class="count" x="{centre:.1f}" y="{top - 4:.1f}" '
            f'text-anchor="middle">{bar.count}</text>'
            f'<text class="axis x" x="{centre:.1f}" y="{HEIGHT - BOTTOM + 18}" '
            f'text-anchor="middle">{escape(bar.label)}</text>'
        )
    return _svg(chart_id, title, "; ".join(bar.tooltip for bar in bars), body)
