"""Dashboard fixtures: a user, a signed-in client, and a small contact center's month.

The seeded data is built so that filters matter: two queues with different scores, one
with enough NPS answers (30) to be reliable and one without (12), detractors with
comments (one of them a spreadsheet formula, one with a javascript: link), and one
request outside the range the tests look at.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from core.models import Answer, CallAttempt, RequestState, SurveyRequest
from core.survey_store import CombinedSurveyCatalog
from core.users import create_user
from scoring.report import ReportQuery
from tests.dashboard.dom import parse

USERNAME = "sue"  # a supervisor: sees full numbers and recordings
ANALYST = "ann"  # sees scores, numbers masked
PASSWORD = "correct horse battery"
SINCE, UNTIL = "2026-11-01", "2026-11-15"
RANGE = {"since": SINCE, "until": UNTIL}
START = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
BILLING_NPS = (10, 9, 9, 8, 7, 10, 6, 3, 9, 10)
TECH_NPS = (2, 5, 9, 6, 0, 8)
CSAT = (5, 4, 2, 3, 5, 1, 4)
FORMULA_COMMENT = '=HYPERLINK("http://evil.example","click")'
SCRIPT_COMMENT = "<script>alert(1)</script> the hold music"


def report_query(**filters: str) -> ReportQuery:
    """The ReportQuery the dashboard makes for RANGE and `filters` (UTC report zone)."""
    zone = ZoneInfo("UTC")
    return ReportQuery(
        since=datetime(2026, 11, 1, tzinfo=zone),
        until=datetime(2026, 11, 16, tzinfo=zone),
        time_zone=zone,
        **filters,
    )


@dataclass
class Call:
    agent: str
    queue: str
    ended: datetime
    state: RequestState = RequestState.COMPLETED
    nps: int | None = None
    csat: int | None = None
    comment: str | None = None
    recording_url: str | None = None
    reason: str | None = None


def _version_id(session) -> int:
    from core.config import DEFAULT_SURVEYS_DIR
    from core.survey import SurveyCatalog
    from core.survey_versions import version_for

    definition = SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get("post-call")
    return version_for(session, definition).id


def seeded_phone(index: int) -> str:
    """The number of the index-th call of add_calls: +1 415 555 0000, 0001, ..."""
    return f"+1415555{index:04d}"


def add_calls(runtime, calls: list[Call]) -> None:
    with runtime.db.session() as session:
        version_id = _version_id(session)
        for index, call in enumerate(calls):
            request = SurveyRequest(
                phone=seeded_phone(index), source_call_id=f"dash-{uuid4().hex}",
                agent=call.agent, queue=call.queue,
                team="north" if call.queue == "billing" else "south", language="en",
                call_ended_at=call.ended, survey_name="post-call", state=call.state,
                suppression_reason=call.reason,
                calls_placed=0 if call.state is RequestState.SUPPRESSED else 1,
            )  # fmt: skip
            session.add(request)
            session.flush()
            if call.state is RequestState.SUPPRESSED:
                continue
            attempt = CallAttempt(request_id=request.id, number=1, status="completed")
            session.add(attempt)
            session.flush()
            answers = [("nps", "nps", call.nps), ("csat", "csat", call.csat)]
            for key, kind, value in answers:
                if value is not None:
                    session.add(
                        Answer(request_id=request.id, attempt_id=attempt.id,
                               survey_version_id=version_id, question_key=key, kind=kind,
                               value=value)
                    )  # fmt: skip
            if call.comment is not None or call.recording_url is not None:
                session.add(
                    Answer(request_id=request.id, attempt_id=attempt.id,
                           survey_version_id=version_id, question_key="improve", kind="comment",
                           recording_url=call.recording_url or "https://api.twilio.test/r.mp3",
                           transcript=call.comment)
                )  # fmt: skip


def month_of_calls() -> list[Call]:
    calls = []
    for i in range(30):
        calls.append(
            Call(
                agent="alice" if i % 2 == 0 else "bob",
                queue="billing",
                ended=START + timedelta(days=i % 10, minutes=i),
                nps=BILLING_NPS[i % len(BILLING_NPS)],
                csat=CSAT[i % len(CSAT)],
            )
        )
    for i in range(12):
        calls.append(
            Call(
                agent="carol",
                queue="tech",
                ended=START + timedelta(days=i % 6, hours=2, minutes=i),
                nps=TECH_NPS[i % len(TECH_NPS)],
                csat=CSAT[(i + 3) % len(CSAT)],
            )
        )
    calls[7].comment = FORMULA_COMMENT
    calls[6].comment, calls[6].recording_url = SCRIPT_COMMENT, "javascript:alert(1)"
    calls[31].comment = "the agent was great but the wait was long"
    calls += [
        Call("alice", "billing", START + timedelta(days=3), RequestState.NO_ANSWER),
        Call("bob", "billing", START + timedelta(days=4), RequestState.VOICEMAIL),
        Call("carol", "tech", START + timedelta(days=5), RequestState.SUPPRESSED,
             reason="not_sampled"),
        Call("dave", "tech", START + timedelta(days=5), RequestState.PARTIAL, nps=10),
        # Before the range: must not count anywhere.
        Call("alice", "billing", datetime(2026, 10, 1, 12, tzinfo=UTC), nps=0, csat=1,
             comment="old news"),
    ]  # fmt: skip
    return calls


@pytest.fixture
def seeded(runtime):
    add_calls(runtime, month_of_calls())
    return runtime


@pytest.fixture
def editor_runtime(runtime):
    """The test runtime with the catalog a process runs with: files and database."""
    return replace(runtime, catalog=CombinedSurveyCatalog(runtime.catalog, runtime.db))


@pytest.fixture
def user(runtime) -> str:
    with runtime.db.session() as session:
        create_user(session, USERNAME, PASSWORD, "supervisor")
    return USERNAME


@pytest.fixture
def analyst(runtime) -> str:
    with runtime.db.session() as session:
        create_user(session, ANALYST, PASSWORD, "analyst")
    return ANALYST


def csrf_from(html: str) -> str:
    field = parse(html).find("input", name="csrf_token")
    assert field is not None, "no CSRF field on the page"
    return field.get("value") or ""


def sign_in(client: FlaskClient, username: str = USERNAME, password: str = PASSWORD):
    token = csrf_from(client.get("/dashboard/login").text)
    return client.post(
        "/dashboard/login",
        data={"csrf_token": token, "username": username, "password": password},
    )


@pytest.fixture
def signed_in(client: FlaskClient, user: str) -> FlaskClient:
    response = sign_in(client)
    assert response.status_code == 302, response.text
    return client


@pytest.fixture
def signed_in_analyst(app, analyst: str) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, analyst)
    assert response.status_code == 302, response.text
    return client
