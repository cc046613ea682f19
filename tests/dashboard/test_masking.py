"""Roles on the dashboard: an analyst never receives a customer's number or recording.

Every response body an analyst can get (the page, every page of the detractor list, every
CSV download) is searched for each seeded number in the forms it could take, and for the
recording addresses; a supervisor's same requests are the control that the data is there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from core.users import set_role
from tests.dashboard.conftest import (
    RANGE,
    USERNAME,
    Call,
    add_calls,
    month_of_calls,
    seeded_phone,
)
from tests.dashboard.dom import parse, table_rows

SPOKEN_NUMBER = "call me back on 415 555 0199 please"
RECORDING = "https://api.twilio.test/"


@pytest.fixture
def calls(runtime) -> list[Call]:
    calls = month_of_calls()
    calls.append(
        Call("erin", "tech", datetime(2026, 11, 9, 12, 0, tzinfo=UTC), nps=1, csat=1,
             comment=SPOKEN_NUMBER, recording_url=RECORDING + "RE-spoken.mp3")
    )  # fmt: skip
    add_calls(runtime, calls)
    return calls


def number_forms(index: int) -> list[str]:
    """The ways seeded number `index` could appear: E.164, without +, national, local."""
    e164 = seeded_phone(index)
    national, local = e164[2:], e164[-7:]
    return [e164, e164[1:], national, local, f"{local[:3]}-{local[3:]}", f"{local[:3]} {local[3:]}"]


def leaks(body: str, calls: list[Call]) -> list[str]:
    found = [form for i in range(len(calls)) for form in number_forms(i) if form in body]
    found += [RECORDING] if RECORDING in body else []
    found += ["the spoken number"] if "555 0199" in body else []
    found += ["a listen link"] if re.search(r">\s*listen\s*<", body) else []
    return found


def bodies(client) -> dict[str, str]:
    """Every dashboard response for RANGE: each page of the list and each download, also
    with parameters that try to ask for more."""
    result = {}
    for params in ({}, {"queue": "tech"}, {"contact": "full", "role": "supervisor"}):
        for page in range(1, 5):
            query = {**RANGE, **params, "page": str(page)}
            result[f"page {query}"] = client.get("/dashboard", query_string=query).text
            for table in ("agents", "trend", "detractors"):
                response = client.get(
                    "/dashboard/export.csv", query_string={**query, "table": table}
                )
                assert response.status_code == 200
                result[f"{table}.csv {query}"] = response.text
    return result


def test_an_analyst_never_receives_a_number_or_a_recording(signed_in_analyst, calls):
    for name, body in bodies(signed_in_analyst).items():
        assert leaks(body, calls) == [], name


def test_a_supervisor_gets_the_same_responses_with_numbers_and_recordings(signed_in, calls):
    every = "".join(bodies(signed_in).values())
    assert leaks(every, calls)  # the control: the analyst's responses had data to leak
    assert RECORDING in every and SPOKEN_NUMBER in every


def test_the_analysts_detractor_list_shows_masked_numbers_and_no_recordings(
    signed_in_analyst, calls
):
    document = parse(signed_in_analyst.get("/dashboard", query_string=RANGE).text)
    table = document.by_id("detractors")
    headers = [th.text for th in table.find("thead").find_all("th")]
    assert "Recording" not in headers and "Phone" in headers
    rows = table_rows(table)
    assert rows and all(re.fullmatch(r"\+1 415 ••• ••\d\d", row["phone"]) for row in rows)
    assert "call me back on ••• ••• •••• please" in {row["comment"] for row in rows}
    assert document.by_id("masked-note").text
    assert document.by_id("role").text == "analyst"


def test_the_analysts_csv_has_masked_numbers_and_no_recording_column(signed_in_analyst, calls):
    response = signed_in_analyst.get(
        "/dashboard/export.csv", query_string={**RANGE, "table": "detractors"}
    )
    header, *lines = response.text.splitlines()
    assert header == "Time,Phone,Agent,Queue,NPS,CSAT,Comment"
    assert lines and all(",'+1 415 ••• ••" in line for line in lines)


def test_a_supervisor_sees_full_numbers_and_recording_links(signed_in, calls):
    document = parse(signed_in.get("/dashboard", query_string=RANGE).text)
    table = document.by_id("detractors")
    rows = table_rows(table)
    assert all(re.fullmatch(r"\+1415555\d{4}", row["phone"]) for row in rows)
    assert any(a.get("href", "").startswith(RECORDING) for a in table.find_all("a"))
    assert SPOKEN_NUMBER in {row["comment"] for row in rows}
    assert document.find(id="masked-note") is None


def test_a_new_role_applies_on_the_next_page_without_signing_in_again(signed_in, runtime, calls):
    def phones() -> list[str]:
        document = parse(signed_in.get("/dashboard", query_string=RANGE).text)
        return [row["phone"] for row in table_rows(document.by_id("detractors"))]

    assert all("•" not in phone for phone in phones())
    with runtime.db.session() as session:
        assert set_role(session, USERNAME, "analyst")
    assert all("•" in phone for phone in phones())
    with runtime.db.session() as session:
        assert set_role(session, USERNAME, "admin")
    assert all("•" not in phone for phone in phones())


def test_analyst_and_supervisor_see_the_same_figures(signed_in, signed_in_analyst, calls):
    def figures(client) -> list[object]:
        document = parse(client.get("/dashboard", query_string=RANGE).text)
        tables = [table_rows(document.by_id(name)) for name in ("agents", "trend")]
        return [*tables, document.by_id("headline").text, document.by_id("funnel").text]

    assert figures(signed_in_analyst) == figures(signed_in)
