"""The SVG charts, read back as XML: points where there is data, inside the plot."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from aftercall.web.dashboard.charts import (
    BOTTOM,
    COUNT_ROOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    Bar,
    Point,
    bar_chart,
    line_chart,
)

SVG = "{http://www.w3.org/2000/svg}"


def nps_chart(values: list[float | None]) -> ET.Element:
    points = [Point(f"d{i}", v, f"d{i}: {v}") for i, v in enumerate(values)]
    svg = line_chart(points, chart_id="c", title="NPS", low=-100, high=100, ticks=(-100, 0, 100))
    return ET.fromstring(str(svg))


@given(st.lists(st.one_of(st.none(), st.floats(-100, 100)), max_size=60))
def test_a_point_per_value_inside_the_plot(values):
    svg = nps_chart(values)
    circles = svg.findall(f"{SVG}circle")
    assert len(circles) == sum(v is not None for v in values)
    for circle in circles:
        assert LEFT <= float(circle.get("cx")) <= WIDTH - RIGHT
        assert TOP <= float(circle.get("cy")) <= HEIGHT - BOTTOM
        assert circle.find(f"{SVG}title").text.startswith(circle.get("data-label"))


def test_gaps_split_the_line_and_higher_is_up():
    svg = nps_chart([10, 20, None, 50, -50, None, 0])
    lines = svg.findall(f"{SVG}polyline")
    assert [len(line.get("points").split()) for line in lines] == [2, 2]
    cy = {c.get("data-label"): float(c.get("cy")) for c in svg.findall(f"{SVG}circle")}
    assert cy["d3"] < cy["d0"] < cy["d6"] < cy["d4"]


def test_no_data_says_so():
    svg = nps_chart([None, None])
    assert svg.findall(f"{SVG}circle") == []
    assert "no answers" in svg.find(f"{SVG}text[@class='empty']").text


def test_bars_are_scaled_to_the_tallest_and_labels_escaped():
    bars = [
        Bar("<1>", 5, "detractor", "a & b"),
        Bar("2", 10, "promoter", "c"),
        Bar("3", 0, "x", ""),
    ]
    svg = ET.fromstring(str(bar_chart(bars, chart_id="b", title="<t>")))
    heights = [float(rect.get("height")) for rect in svg.findall(f"{SVG}rect")]
    assert heights[1] == HEIGHT - TOP - BOTTOM - COUNT_ROOM
    assert heights[0] == heights[1] / 2 and heights[2] == 0
    assert svg.find(f"{SVG}rect/{SVG}title").text == "a & b"
    assert svg.get("aria-label") == "<t>"


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=11))
def test_each_count_is_written_above_its_bar_inside_the_chart(counts):
    bars = [Bar(str(i), count, "promoter", f"{i}: {count}") for i, count in enumerate(counts)]
    svg = ET.fromstring(str(bar_chart(bars, chart_id="b", title="t")))
    tops = [float(rect.get("y")) for rect in svg.findall(f"{SVG}rect")]
    labels = [float(text.get("y")) for text in svg.findall(f"{SVG}text[@class='count']")]
    font_size = 11  # svg .count in dashboard.css
    for top, baseline in zip(tops, labels, strict=True):
        assert baseline < top  # on the page's white, not on the coloured bar
        assert baseline - font_size >= 0


def test_a_chart_describes_every_value_it_draws():
    """An image to a screen reader: its <desc> carries what the tooltips say."""
    bars = bar_chart(
        [
            Bar("9", 4, "promoter", "9: 4 answers (80%)"),
            Bar("10", 1, "promoter", "10: 1 answers (20%)"),
        ],
        chart_id="b",
        title="NPS answers",
    )
    assert ET.fromstring(str(bars)).find(f"{SVG}desc").text == (
        "9: 4 answers (80%); 10: 1 answers (20%)"
    )
    points = [Point("d0", 20, "d0: NPS +20.0 (n=5)"), Point("d1", None, "d1: NPS – (n=0)")]
    line = line_chart(points, chart_id="c", title="NPS", low=-100, high=100, ticks=(0,))
    assert ET.fromstring(str(line)).find(f"{SVG}desc").text == "d0: NPS +20.0 (n=5)"
    assert nps_chart([None]).find(f"{SVG}desc").text == "no answers in this range"
