"""The dashboard's survey modes: a mode filter, callbacks and in-call surveys side by side,
and the in-call survey no support call claimed shown as "unattributed"."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta

import pytest

from core.models import Answer, Attribution, CallAttempt, RequestState, SurveyMode, SurveyRequest
from scoring.report import UNATTRIBUTED, report
from tests.dashboard.conftest import RANGE, START, _version_id, report_query
from tests.dashboard.dom import Element, parse, table_rows

# (agent, state, nps): in-call surveys of the seeded fortnight; None: unattributed.
IN_CALL = [
    ("alice", RequestState.COMPLETED, 10),
    ("alice", RequestState.COMPLETED, 9),
    ("bob", RequestState.PARTIAL, 2),
    (None, RequestState.COMPLETED, 0),
    (None, RequestState.ABANDONED, None),
    ("carol", RequestState.AWAITING_TRANSFER, None),
]


def add_in_call_surveys(runtime) -> None:
    """In-call requests as ivr.inbound leaves them: no call placed, an inbound attempt
    once the customer was transferred, no agent, queue or team when unattributed."""
    with runtime.db.session() as session:
        version_id = _version_id(session)
        for index, (agent, state, nps) in enumerate(IN_CALL):
            request = SurveyRequest(
                phone=f"+1415556{index:04d}", source_call_id=f"in-call-{index}", agent=agent,
                queue="billing" if agent else None, team="north" if agent else None,
                language="en", call_ended_at=START + timedelta(days=1, minutes=index),
                survey_name="post-call", state=state, calls_placed=0, mode=SurveyMode.IN_CALL,
                attribution=Attribution.TOKEN if agent else Attribution.NONE,
            )  # fmt: skip
            session.add(request)
            session.flush()
            if state is RequestState.AWAITING_TRANSFER:
                continue
            attempt = CallAttempt(request_id=request.id, number=1, status="completed",
                                  direction="inbound")  # fmt: skip
            session.add(attempt)
            session.flush()
            if nps is not None:
                session.add(
                    Answer(request_id=request.id, attempt_id=attempt.id,
                           survey_version_id=version_id, question_key="nps", kind="nps",
                           value=nps)
                )  # fmt: skip


@pytest.fixture
def both_modes(seeded):
    add_in_call_surveys(seeded)
    return seeded


def page(client, **params: str) -> Element:
    response = client.get("/dashboard", query_string={**RANGE, **params})
    assert response.status_code == 200, response.text
    return parse(response.text)


def test_the_mode_filter_offers_both_modes_and_keeps_the_choice(signed_in, both_modes):
    select = page(signed_in, mode="in_call").find("select", name="mode")
    assert select is not None
    options = {o.get("value"): ("selected" in o.attrs, o.text) for o in select.find_all("option")}
    assert options == {
        "": (False, "All"),
        "callback": (False, "Callback"),
        "in_call": (True, "In-call"),
    }
    label = next(e for e in page(signed_in).find_all("label") if e.find("select", name="mode"))
    assert label.text.startswith("Mode")  # the control's accessible name


@pytest.mark.parametrize("mode", ["callback", "in_call"])
def test_a_mode_filter_gives_that_modes_figures(signed_in, both_modes, mode):
    with both_modes.db.session() as session:
        (expected,) = report(session, report_query(mode=mode))
    document = page(signed_in, mode=mode)
    assert document.by_id("headline-nps").get("data-n") == str(expected.nps_responses)
    assert document.by_id("headline-response-rate").get("data-value") == (
        f"{expected.response_rate:.1f}"
    )
    funnel = {
        tr.get("data-key"): int(tr.find("td").get("data-value"))
        for tr in document.by_id("funnel").find_all("tr")
        if tr.get("data-key")
    }
    assert (funnel["received"], funnel["placed"], funnel["reached"]) == (
        expected.received,
        expected.placed,
        expected.reached,
    )
    assert [r["mode"] for r in table_rows(document.by_id("modes"))] == [
        "Callback" if mode == "callback" else "In-call"
    ]
    # Links on the page keep the filter: sorting, paging, the downloads.
    assert f"mode={mode}" in document.by_id("export-agents").get("href")
    assert f"mode={mode}" in document.by_id("export-modes").get("href")


def test_in_call_requests_place_no_call_and_count_once_transferred(signed_in, both_modes):
    document = page(signed_in, mode="in_call")
    funnel = {
        tr.get("data-key"): int(tr.find("td").get("data-value"))
        for tr in document.by_id("funnel").find_all("tr")
        if tr.get("data-key")
    }
    # Six received; one waits for its transfer; five transferred, four of them completed
    # or partial, one hung up (abandoned): all five reached.
    assert {k: funnel[k] for k in ("received", "placed", "answered", "reached", "completed")} == {
        "received": 6,
        "placed": 0,
        "answered": 5,
        "reached": 5,
        "completed": 3,
    }
    assert document.by_id("headline-response-rate").get("data-value") == "60.0"


def test_the_mode_table_puts_callbacks_and_in_call_side_by_side(signed_in, both_modes):
    with both_modes.db.session() as session:
        expected = report(session, replace(report_query(), by=("mode",)))
    rows = table_rows(page(signed_in).by_id("modes"))
    assert [r["mode"] for r in rows] == ["Callback", "In-call"]
    for row, figures in zip(rows, expected, strict=True):
        assert row["nps"] == f"{figures.nps:.1f}"
        assert row["nps_n"] == str(figures.nps_responses)
        assert (row["received"], row["reached"], row["completed"]) == (
            str(figures.received),
            str(figures.reached),
            str(figures.completed),
        )
        assert row["response_rate"] == f"{figures.response_rate:.1f}"
    download = signed_in.get("/dashboard/export.csv", query_string={**RANGE, "table": "modes"})
    assert download.status_code == 200
    parsed = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["Mode"], r["NPS n"], r["Response rate"]) for r in parsed] == [
        (r["mode"], r["nps_n"], r["response_rate"]) for r in rows
    ]


def test_an_empty_range_has_an_empty_mode_table(signed_in, runtime):
    assert table_rows(page(signed_in).by_id("modes")) == []


def test_unattributed_surveys_are_shown_as_such(signed_in, both_modes):
    rows = table_rows(page(signed_in, mode="in_call").by_id("agents"))
    # carol's request still waits for its transfer: a row, with no answers.
    assert [r["agent"] for r in rows] == ["alice", "bob", "carol", UNATTRIBUTED]
    with both_modes.db.session() as session:
        (unattributed,) = [
            row
            for row in report(session, replace(report_query(mode="in_call"), by=("agent",)))
            if row.group["agent"] is None
        ]
    assert rows[-1]["nps_n"] == str(unattributed.nps_responses) == "1"
    download = signed_in.get(
        "/dashboard/export.csv", query_string={**RANGE, "table": "agents", "mode": "in_call"}
    )
    assert [r["Agent"] for r in csv.DictReader(io.StringIO(download.text))] == [
        "alice",
        "bob",
        "carol",
        UNATTRIBUTED,
    ]
    detractors = table_rows(page(signed_in, mode="in_call").by_id("detractors"))
    assert {r["agent"] for r in detractors} == {"bob", UNATTRIBUTED}


@pytest.mark.parametrize("mode", ["in-call", "sms", "CALLBACK"])
def test_an_unknown_mode_says_what_is_wrong(signed_in, both_modes, mode):
    response = signed_in.get("/dashboard", query_string={**RANGE, "mode": mode})
    assert response.status_code == 400
    error = parse(response.text).by_id("filter-error").text
    assert error.startswith("mode:") and "in_call" in error
    assert (
        signed_in.get(
            "/dashboard/export.csv", query_string={**RANGE, "table": "modes", "mode": mode}
        ).status_code
        == 400
    )
