"""The SVG charts, read back as XML: points where there is data, inside the plot."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from aftercall.web.dashboard.charts import (
    BOTTOM,
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
    assert heights[1] == HEIGHT - TOP - BOTTOM
    assert heights[0] == heights[1] / 2 and heights[2] == 0
    assert svg.find(f"{SVG}rect/{SVG}title").text == "a & b"
    assert svg.get("aria-label") == "<t>"
