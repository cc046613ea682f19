"""The dashboard page: its figures are scoring.report's for the filters chosen."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from aftercall.web.dashboard import views
from scoring.detractors import detractors
from scoring.formats import SMALL_SAMPLE_MARK, SMALL_SAMPLE_NOTE, nps_cell
from scoring.report import report
from tests.dashboard.conftest import (
    FORMULA_COMMENT,
    RANGE,
    SCRIPT_COMMENT,
    START,
    Call,
    add_calls,
    month_of_calls,
    report_query,
)
from tests.dashboard.dom import Element, parse, table_rows


def page(client, **params: str) -> Element:
    response = client.get("/dashboard", query_string={**RANGE, **params})
    assert response.status_code == 200, response.text
    return parse(response.text)


def headline(document: Element) -> dict[str, str]:
    return {
        name: document.by_id(f"headline-{name}").get("data-value")
        for name in ("nps", "csat", "ces", "response-rate")
    }


def rounded(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@pytest.mark.parametrize(
    "filters", [{}, {"queue": "billing"}, {"queue": "tech"}, {"team": "south"}]
)
def test_headline_figures_are_the_reports(signed_in, seeded, filters):
    with seeded.db.session() as session:
        (expected,) = report(session, report_query(**filters))
    document = page(signed_in, **filters)
    assert headline(document) == {
        "nps": rounded(expected.nps),
        "csat": rounded(expected.csat),
        "ces": "",
        "response-rate": rounded(expected.response_rate),
    }
    assert document.by_id("headline-nps").get("data-n") == str(expected.nps_responses)


def test_a_filter_changes_the_figures(signed_in, seeded):
    everything, billing, tech = (
        page(signed_in),
        page(signed_in, queue="billing"),
        page(signed_in, queue="tech"),
    )
    assert len({headline(d)["nps"] for d in (everything, billing, tech)}) == 3
    # The dropdown keeps the choice, and offers every queue there is.
    select = billing.find("select", name="queue")
    options = {o.get("value"): "selected" in o.attrs for o in select.find_all("option")}
    assert options == {"": False, "billing": True, "tech": False}


def test_too_few_nps_answers_are_shown_marked_as_a_small_sample(signed_in, seeded):
    tech = page(signed_in, queue="tech").by_id("headline-nps")
    assert tech.get("data-reliable") == "no"
    # Shown with its margin and marked, as the demo's summary and `aftercall report` do.
    assert tech.get("data-value") in tech.text
    assert "n=13" in tech.text and "small sample" in tech.text  # 12 from carol, 1 from dave
    billing = page(signed_in, queue="billing").by_id("headline-nps")
    assert billing.get("data-reliable") == "yes"
    assert billing.get("data-value") in billing.text


def test_the_range_and_its_default_of_thirty_days(signed_in, seeded):
    # Only the request from 1 October answered NPS 0 with a comment "old news".
    october = page(signed_in, since="2026-10-01", until="2026-10-01")
    assert october.by_id("headline-nps").get("data-n") == "1"
    seeded.now = lambda: datetime(2026, 11, 20, 12, tzinfo=UTC)
    response = signed_in.get("/dashboard")
    document = parse(response.text)
    assert document.find("input", name="since").get("value") == "2026-10-22"
    assert document.find("input", name="until").get("value") == "2026-11-20"
    assert headline(document) == headline(page(signed_in))


@pytest.mark.parametrize(
    ("unit", "first", "count"),
    [("day", "2026-11-01", 15), ("week", "2026-W44", 3), ("month", "2026-11", 1)],
)
def test_trend_charts_have_a_point_per_period_with_answers(signed_in, seeded, unit, first, count):
    document = page(signed_in, unit=unit)
    with seeded.db.session() as session:
        rows = report(session, replace(report_query(), by=(unit,)))
    for chart, figure in (("nps-trend", "nps"), ("csat-trend", "csat")):
        svg = document.by_id(chart)
        points = {c.get("data-label"): c.get("data-value") for c in svg.find_all("circle")}
        expected = {
            row.group[unit]: f"{getattr(row, figure):.1f}".rstrip("0").rstrip(".")
            for row in rows
            if getattr(row, figure) is not None
        }
        assert points == expected
        assert all(c.find("title") is not None for c in svg.find_all("circle"))
        labels = [t.text for t in svg.find_all("text") if "x" in (t.get("class") or "").split()]
        assert labels[0] == first and len(labels) <= count
    trend = table_rows(document.by_id("trend"))
    assert [r["period"] for r in trend] == [row.group[unit] for row in rows]


def test_distributions_and_funnel(signed_in, seeded):
    document = page(signed_in)
    with seeded.db.session() as session:
        (expected,) = report(session, report_query())
    nps_bars = document.by_id("nps-distribution").find_all("rect")
    assert {int(b.get("data-label")): int(b.get("data-count")) for b in nps_bars} == (
        expected.nps_distribution
    )
    csat_bars = document.by_id("csat-distribution").find_all("rect")
    assert {int(b.get("data-label")): int(b.get("data-count")) for b in csat_bars} == (
        expected.csat_distribution
    )
    funnel = {
        tr.get("data-key"): int(tr.find("td").get("data-value"))
        for tr in document.by_id("funnel").find_all("tr")
        if tr.get("data-key")
    }
    assert funnel == {
        "received": expected.received, "suppressed": expected.suppressed_total,
        "placed": expected.placed, "answered": expected.answered, "reached": expected.reached,
        "completed": expected.completed, "partial": expected.partial,
        "opted_out": expected.opted_out,
    }  # fmt: skip
    assert (expected.received, expected.suppressed_total, expected.placed) == (46, 1, 45)


def test_agent_table(signed_in, seeded):
    with seeded.db.session() as session:
        expected = {
            r.group["agent"]: r for r in report(session, replace(report_query(), by=("agent",)))
        }
    rows = table_rows(page(signed_in).by_id("agents"))
    assert [r["agent"] for r in rows] == ["alice", "bob", "carol", "dave"]
    for row in rows:
        figures = expected[row["agent"]]
        assert row["nps"] == rounded(figures.nps)
        assert row["nps_n"] == str(figures.nps_responses)
        assert row["csat"] == rounded(figures.csat)
        assert row["csat_n"] == str(figures.csat_responses)
        assert row["completed"] == str(figures.completed)
        assert row["response_rate"] == rounded(figures.response_rate)


def test_agent_table_shows_each_nps_as_the_report_does_small_samples_marked(signed_in, runtime):
    """Each agent's NPS with its margin, as `aftercall report` prints it; one from fewer
    than 30 answers marked, the mark explained by the note under the table (its title,
    and the cell described by the note for screen readers). The seeded month's agents
    all have small samples: erin has enough."""
    erin = [
        Call("erin", "tech", START + timedelta(days=i % 10, hours=3), nps=(10, 9, 3)[i % 3])
        for i in range(30)
    ]
    add_calls(runtime, month_of_calls() + erin)
    with runtime.db.session() as session:
        expected = {
            r.group["agent"]: r for r in report(session, replace(report_query(), by=("agent",)))
        }
    document = page(signed_in)
    note = document.by_id("agents-small-sample")
    assert note.text == SMALL_SAMPLE_NOTE
    cells = document.by_id("agents").find_all("td", data_key="nps")
    agents = [row["agent"] for row in table_rows(document.by_id("agents"))]
    marked = []
    for agent, cell in zip(agents, cells, strict=True):
        figures = expected[agent]
        assert cell.text.replace(" *", "*") == nps_cell(figures)
        mark = cell.find("abbr")
        if figures.nps_reliable:
            assert mark is None and cell.get("aria-describedby") is None
            continue
        marked.append(agent)
        assert mark.text == SMALL_SAMPLE_MARK and mark.get("title") == SMALL_SAMPLE_NOTE
        assert cell.get("aria-describedby") == "agents-small-sample"
        assert cell.get("data-small-sample") == "yes"
    assert marked == ["alice", "bob", "carol", "dave"] and "erin" in agents


@pytest.mark.parametrize("sort", ["nps", "-nps", "csat", "-csat", "-nps_n", "agent", "-agent"])
def test_agent_table_sorts_by_any_column(signed_in, seeded, sort):
    key = sort.lstrip("-")
    rows = table_rows(page(signed_in, sort=sort).by_id("agents"))
    values = [r[key] for r in rows if r[key] != ""]
    as_values = values if key == "agent" else [float(v) for v in values]
    assert as_values == sorted(as_values, reverse=sort.startswith("-"))
    assert [r for r in rows if r[key] == ""] == rows[len(values) :]  # missing last


def test_sort_links_toggle_and_keep_the_filters(signed_in, seeded):
    document = page(signed_in, queue="billing", sort="-nps")
    links = {a.get("data-sort").lstrip("-"): a for a in document.by_id("agents").find_all("a")}
    assert links["nps"].get("data-sort") == "nps"  # clicking the sorted column reverses it
    assert links["csat"].get("data-sort") == "-csat"  # scores start best first
    assert links["agent"].get("data-sort") == "agent"
    assert "queue=billing" in links["csat"].get("href")
    followed = signed_in.get(links["csat"].get("href"))
    assert parse(followed.text).by_id("agents").get("data-sort") == "-csat"


def test_an_unknown_sort_falls_back_to_agent(signed_in, seeded):
    assert page(signed_in, sort="password_hash").by_id("agents").get("data-sort") == "agent"


def test_detractors_newest_first_with_comments_and_recordings(signed_in, seeded):
    document = page(signed_in)
    rows = table_rows(document.by_id("detractors"))
    with seeded.db.session() as session:
        expected = detractors(session, report_query(), limit=views.DETRACTORS_PER_PAGE)
    assert [r["time"] for r in rows] == [
        d.call_ended_at.strftime("%Y-%m-%d %H:%M") for d in expected
    ]
    assert rows == sorted(rows, key=lambda r: r["time"], reverse=True)
    comments = {r["comment"] for r in rows}
    assert {FORMULA_COMMENT, SCRIPT_COMMENT} <= comments
    assert "old news" not in comments  # outside the range
    table = document.by_id("detractors")
    # Escaped text, never markup; a javascript: recording address is no link.
    assert table.find_all("script") == []
    hrefs = [a.get("href") for a in table.find_all("a")]
    assert hrefs and all(h.startswith("https://") for h in hrefs)
    script_row = next(r for r in rows if r["comment"] == SCRIPT_COMMENT)
    assert script_row["recording"] == ""


def test_detractor_paging(signed_in, seeded, monkeypatch):
    monkeypatch.setattr(views, "DETRACTORS_PER_PAGE", 4)
    with seeded.db.session() as session:
        everyone = detractors(session, report_query(), limit=100)
    seen = []
    document = page(signed_in)
    for number in range(1, 100):
        seen += [r["time"] for r in table_rows(document.by_id("detractors"))]
        older = document.find("a", id="older")
        if older is None:
            break
        assert f"page={number + 1}" in older.get("href")
        document = parse(signed_in.get(older.get("href")).text)
    assert seen == [d.call_ended_at.strftime("%Y-%m-%d %H:%M") for d in everyone]
    assert document.find("a", id="newer") is not None


def test_agent_paging_in_the_chosen_order(signed_in, runtime, monkeypatch):
    monkeypatch.setattr(views, "AGENTS_PER_PAGE", 4)
    calls = [Call(f"agent-{i:02d}", "billing", datetime(2026, 11, 3, 9, i, tzinfo=UTC), nps=i % 11)
             for i in range(10)]  # fmt: skip
    add_calls(runtime, calls)
    seen, document = [], page(signed_in, sort="-agent")
    for number in range(1, 10):
        seen += [r["agent"] for r in table_rows(document.by_id("agents"))]
        assert (
            f"Agents {4 * number - 3}–{min(4 * number, 10)} of 10"
            in document.by_id("agents-pages").text
        )
        following = document.find("a", id="agents-next")
        if following is None:
            break
        assert "sort=-agent" in following.get("href")  # the order is kept across pages
        document = parse(signed_in.get(following.get("href")).text)
    assert seen == [f"agent-{i:02d}" for i in range(9, -1, -1)]
    assert document.find("a", id="agents-previous") is not None
    csv = signed_in.get("/dashboard/export.csv", query_string={**RANGE, "table": "agents"})
    assert csv.text.count("agent-") == 10  # the download has every agent


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-13-01"},
        {"agents_page": "0"},
        {"since": "2026-11-20", "until": "2026-11-01"},
        {"unit": "hour"},
        {"page": "two"},
        {"page": "0"},
        {"page": "99999999999999999999999"},
        {"queue": "x" * 300},
        {"since": "2000-01-01", "until": "2026-01-01"},
    ],
)
def test_bad_filters_say_what_is_wrong(signed_in, seeded, params):
    response = signed_in.get("/dashboard", query_string={**RANGE, **params})
    assert response.status_code == 400
    assert parse(response.text).by_id("filter-error").text


def test_an_empty_range_shows_no_figures_rather_than_failing(signed_in, runtime):
    document = page(signed_in)
    assert headline(document) == {"nps": "", "csat": "", "ces": "", "response-rate": ""}
    assert table_rows(document.by_id("agents")) == []


def test_the_page_costs_the_same_few_queries_however_much_data(signed_in, seeded):
    def queries() -> int:
        statements = []

        def count(*args):
            statements.append(args[2])

        event.listen(seeded.db.engine, "before_cursor_execute", count)
        try:
            page(signed_in)
        finally:
            event.remove(seeded.db.engine, "before_cursor_execute", count)
        return len(statements)

    before = queries()
    more = [Call(f"agent{i}", "sales", datetime(2026, 11, 3, 9, i, tzinfo=UTC), nps=i % 11,
                 csat=1, comment=f"comment {i}") for i in range(40)]  # fmt: skip
    add_calls(seeded, more)
    # 16: the three reports the rollup answers (trend, agents, modes and channels) each
    # look for texts and count them in one small statement, over the conversations
    # (scoring.report).
    assert queries() == before <= 16
