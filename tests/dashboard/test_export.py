"""CSV downloads: exactly the table on screen, under the same filters."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from scoring.report import report
from tests.dashboard.conftest import FORMULA_COMMENT, RANGE, report_query
from tests.dashboard.dom import parse, table_rows


def download(client, table: str, **params: str) -> list[dict[str, str]]:
    response = client.get("/dashboard/export.csv", query_string={**RANGE, **params, "table": table})
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition == (
        f'attachment; filename="aftercall-{table}-{RANGE["since"]}-to-{RANGE["until"]}.csv"'
    )
    return list(csv.DictReader(io.StringIO(response.text)))


def number(text: str) -> float | None:
    return None if text == "" else float(text)


@pytest.mark.parametrize("filters", [{}, {"queue": "tech"}, {"queue": "billing", "team": "north"}])
def test_agents_csv_is_the_report_by_agent(signed_in, seeded, filters):
    rows = download(signed_in, "agents", **filters)
    with seeded.db.session() as session:
        expected = report(session, replace(report_query(**filters), by=("agent",)))
    assert [r["Agent"] for r in rows] == [e.group["agent"] for e in expected]
    for row, figures in zip(rows, expected, strict=True):
        assert number(row["NPS"]) == pytest.approx(figures.nps, abs=0.05)
        assert int(row["NPS n"]) == figures.nps_responses
        assert number(row["CSAT"]) == pytest.approx(figures.csat, abs=0.05)
        assert int(row["CSAT n"]) == figures.csat_responses
        assert row["CES"] == ""
        assert int(row["Completed"]) == figures.completed
        assert number(row["Response rate"]) == pytest.approx(figures.response_rate, abs=0.05)


def test_trend_csv_is_the_report_by_week(signed_in, seeded):
    rows = download(signed_in, "trend", unit="week")
    with seeded.db.session() as session:
        expected = report(session, replace(report_query(), by=("week",)))
    assert [r["Period"] for r in rows] == [e.group["week"] for e in expected]
    for row, figures in zip(rows, expected, strict=True):
        assert number(row["NPS"]) == pytest.approx(figures.nps, abs=0.05)
        assert number(row["NPS ±"]) == pytest.approx(figures.nps_margin, abs=0.05)
        assert int(row["NPS n"]) == figures.nps_responses
        assert int(row["Completed"]) == figures.completed


@pytest.mark.parametrize(
    ("table", "params"),
    [
        ("agents", {"sort": "-csat"}),
        ("agents", {"queue": "billing", "sort": "nps"}),
        ("trend", {"unit": "day"}),
        ("detractors", {}),
        ("detractors", {"queue": "tech"}),
    ],
)
def test_csv_has_the_rows_and_columns_on_screen(signed_in, seeded, table, params):
    rows = download(signed_in, table, **params)
    response = signed_in.get("/dashboard", query_string={**RANGE, **params})
    document = parse(response.text)
    shown = document.by_id(table)
    headers = [th.text.rstrip(" ▲▼") for th in shown.find("thead").find_all("th")]
    assert list(rows[0]) == headers
    on_screen = table_rows(shown)
    assert len(rows) == len(on_screen) > 0
    for exported, screen in zip(rows, on_screen, strict=True):
        assert [v.removeprefix("'") for v in exported.values()] == list(screen.values())
    # The page links to exactly this download.
    link = document.by_id(f"export-{table}").get("href")
    for name, value in params.items():
        assert f"{name}={value}" in link


def test_formulas_in_comments_are_not_run_by_spreadsheets(signed_in, seeded):
    rows = download(signed_in, "detractors")
    comments = [r["Comment"] for r in rows]
    assert "'" + FORMULA_COMMENT in comments
    assert FORMULA_COMMENT not in comments
    assert all(not c.startswith(("=", "+", "@")) for c in comments)


@pytest.mark.parametrize(
    "params", [{"table": "users"}, {}, {"table": "agents", "since": "yesterday"}]
)
def test_bad_export_requests(signed_in, params):
    response = signed_in.get("/dashboard/export.csv", query_string=params)
    assert response.status_code == 400
