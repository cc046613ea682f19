"""Every dashboard page a person sees, checked with axe-core in headless Chromium against
the WCAG 2.1 A and AA rules (axe-playwright-python, which bundles axe-core).

Each role signs in and walks the pages as that role sees them, with data enough for
every table and chart to be drawn: the sign-in form (and its error), the results page
(filtered by mode, by channel with the funnel's text steps, by week with the trend
table opened, a later page of detractors, an empty range, a bad filter), the surveys, a preview, the test-call form (and its refusal)
and a test call's status, the Queues page (read-only, with an admin's buttons, after an
action, with Redis down), the Follow-ups pages (the list and its filters, one follow-up
with notes and history, after a change, a refused change, an analyst's refusal) and the
error pages a signed-in user can reach. What differs
by role is checked as that role: the analyst's masked detractors, the supervisor's
recording links, the admin's forms.

A page's violations are collected and the test fails once, at the end, listing each
page with each violation's rule, impact, help and the selectors of the offending nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue, SimpleWorker
from rq.job import JobStatus
from sqlalchemy import select

from core.models import Answer, CallAttempt, FollowUp, FollowUpNote, SurveyRequest, User
from core.users import create_user
from scoring import follow_ups
from tests.aftercall.rq_processes import PHONE, call_customer
from tests.dashboard.conftest import PASSWORD, RANGE, add_calls, month_of_calls
from tests.dashboard.test_browser import chromium
from tests.dashboard.test_channels import add_text_surveys
from tests.dashboard.test_modes import add_in_call_surveys

pytestmark = pytest.mark.browser

WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
# The same rules, every violation in full; only the details of the rules that passed (or
# need a person to judge) are left out, which halves the time axe takes on the results page.
AXE_OPTIONS = {**WCAG_21_AA, "resultTypes": ["violations"]}
# Monday 18:05 UTC: 10:05 in California, inside the test call's calling hours.
MONDAY = datetime(2026, 11, 23, 18, 5, tzinfo=UTC)
RANGE_QUERY = f"since={RANGE['since']}&until={RANGE['until']}"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """One Chromium for the module: every test opens its own context (cookies) in it."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def center(runtime):
    """The seeded fortnight of both survey modes and every channel, and a user of each
    role."""
    add_calls(runtime, month_of_calls())
    add_in_call_surveys(runtime)
    add_text_surveys(runtime)
    with runtime.db.session() as session:
        for role in ("admin", "supervisor", "analyst"):
            create_user(session, role, PASSWORD, role)
    return runtime


@contextmanager
def serving(runtime) -> Iterator[str]:
    from aftercall.web import create_app
    from phonesim import BackgroundServer

    server = BackgroundServer(create_app(runtime=runtime)).start()
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture
def live_url(center) -> Iterator[str]:
    with serving(center) as url:
        yield url


@pytest.fixture
def queued_center(center, redis_url):
    """The seeded center on a real Redis, with a failed call job and the dialer's clock
    on a Monday inside calling hours."""
    live = replace(
        center, settings=center.settings.with_overrides(redis_url=redis_url), now=lambda: MONDAY
    )
    job = Queue("calls", connection=live.redis).enqueue(call_customer, PHONE, "/nonexistent/line")
    SimpleWorker(["calls"], connection=live.redis).work(burst=True)
    assert job.get_status(refresh=True) == JobStatus.FAILED
    return live


@pytest.fixture
def queued_url(queued_center) -> Iterator[str]:
    with serving(queued_center) as url:
        yield url


class Walk:
    """A signed-out browser tab that visits pages and runs axe on each."""

    def __init__(self, browser, base_url: str):
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(5000)
        self.base_url = base_url
        self.found: list[str] = []
        self.checked: list[str] = []

    def visit(self, path: str, status: int = 200) -> None:
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.status == status, (path, response)
        self.check(path)

    def check(self, what: str) -> None:
        """axe's WCAG 2.1 A and AA rules on the page as it is now."""
        results = self.axe.run(self.page, options=AXE_OPTIONS)
        self.checked.append(what)
        violations = results.response["violations"]
        if violations:
            self.found.append(describe(what, violations))

    def sign_in(self, username: str) -> None:
        self.page.goto(f"{self.base_url}/dashboard")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in").click()
        assert self.page.url == f"{self.base_url}/dashboard"

    def submit(self, form: str, what: str, status: int) -> None:
        with self.page.expect_navigation() as navigation:
            self.page.click(f"{form} button[type=submit]")
        assert navigation.value is not None and navigation.value.status == status, what
        self.check(what)

    def assert_no_violations(self) -> None:
        assert not self.found, (
            f"{len(self.found)} of {len(self.checked)} pages checked fail:\n\n"
            + "\n\n".join(self.found)
        )

    def close(self) -> None:
        self.context.close()


def describe(what: str, violations: list[dict]) -> str:
    lines = [f"{what}: {len(violations)} WCAG 2.1 A/AA violation(s)"]
    for violation in violations:
        lines.append(f"  {violation['id']} ({violation['impact']}): {violation['help']}")
        lines += [f"    {' > '.join(map(str, node['target']))}" for node in violation["nodes"]]
    return "\n".join(lines)


@pytest.fixture
def walk(browser) -> Iterator:
    walks: list[Walk] = []

    def start(base_url: str) -> Walk:
        walks.append(Walk(browser, base_url))
        return walks[-1]

    yield start
    for opened in walks:
        opened.close()


def test_signed_out_and_analyst_pages(walk, live_url):
    tab = walk(live_url)
    tab.visit("/dashboard/login")
    tab.page.get_by_label("Username").fill("analyst")
    tab.page.get_by_label("Password").fill("not the password")
    tab.submit("#login-form", "sign-in, wrong password", 200)
    assert tab.page.is_visible("#login-error")

    tab.sign_in("analyst")
    tab.visit(f"/dashboard?{RANGE_QUERY}")
    assert tab.page.is_visible("#masked-note")
    assert tab.page.locator("#detractors tbody tr").count() == 20
    tab.visit(f"/dashboard?{RANGE_QUERY}&page=2")
    tab.visit(f"/dashboard?{RANGE_QUERY}&mode=in_call&unit=week")
    tab.page.click("#trend-panel summary")
    assert tab.page.is_visible("#trend")
    tab.check("the in-call results by week, the trend table opened")
    tab.visit(f"/dashboard?{RANGE_QUERY}&channel=sms")
    assert tab.page.is_visible('#funnel tr[data-key="undelivered"]')
    tab.visit("/dashboard?since=2020-01-01&until=2020-01-07")  # nothing in the range
    tab.visit("/dashboard?since=2026-11-15&until=2026-11-01", status=400)
    assert tab.page.is_visible("#filter-error")

    tab.visit("/dashboard/surveys")
    tab.visit("/dashboard/surveys/post-call/preview/en")
    tab.visit("/dashboard/surveys/post-call/preview/pl?version=1")
    tab.visit("/dashboard/queues", status=403)
    tab.visit("/dashboard/surveys/post-call/test-call", status=403)
    tab.visit("/dashboard/surveys/no-such-survey/preview/en", status=404)
    tab.visit("/dashboard/no-such-page", status=404)
    tab.visit("/dashboard/export.csv?table=nothing", status=400)
    tab.assert_no_violations()


@pytest.mark.redis
def test_supervisor_pages(walk, queued_url):
    tab = walk(queued_url)
    tab.sign_in("supervisor")
    tab.visit(f"/dashboard?{RANGE_QUERY}")
    assert tab.page.locator('#detractors td[data-key="recording"] a').count() > 0
    tab.visit(f"/dashboard?{RANGE_QUERY}&mode=callback&queue=billing&sort=-nps")
    tab.visit(f"/dashboard?{RANGE_QUERY}&channel=sms_fallback")
    tab.visit("/dashboard/queues")
    assert tab.page.locator("#failed tbody tr[data-job]").count() == 1
    tab.visit("/dashboard/queues?queue=alerts")
    tab.assert_no_violations()


@pytest.mark.redis
def test_admin_pages(walk, queued_url, queued_center):
    tab = walk(queued_url)
    tab.sign_in("admin")
    tab.visit(f"/dashboard?{RANGE_QUERY}&mode=in_call")
    tab.visit("/dashboard/surveys")
    assert tab.page.is_visible("#test-call-post-call")

    tab.visit("/dashboard/surveys/post-call/test-call")
    tab.page.get_by_label("Phone number, with its country code").fill("12345")
    tab.submit("#test-call-form", "the test-call form, refused", 400)
    assert tab.page.is_visible("#test-call-error")
    tab.page.get_by_label("Phone number, with its country code").fill("+1 415 555 0199")
    with tab.page.expect_navigation():
        tab.page.click("#test-call-form button[type=submit]")
    status_path = tab.page.url.removeprefix(queued_url)
    request_id = int(status_path.rsplit("/", 1)[1])
    tab.check("a test call just placed")
    with queued_center.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        attempt = CallAttempt(request_id=request_id, number=1, status="completed",
                              call_sid="CA" + "1" * 32, answered_by="human",
                              duration_seconds=64)  # fmt: skip
        session.add(attempt)
        session.flush()
        session.add(Answer(request_id=request_id, attempt_id=attempt.id,
                           survey_version_id=request.survey_version_id, question_key="nps",
                           kind="nps", value=9, keys="9"))  # fmt: skip
    tab.visit(status_path)
    assert tab.page.locator("#attempts tbody tr[data-status]").count() == 1

    tab.visit("/dashboard/queues")
    assert tab.page.locator("#failed form.delete").count() == 1
    tab.submit("#failed form.delete", "the queues after deleting a failed job", 200)
    assert tab.page.is_visible('p.flash[data-category="done"]')
    tab.assert_no_violations()


def test_queues_page_with_redis_down(walk, center):
    down = replace(
        center, settings=center.settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    )
    with serving(down) as url:
        tab = walk(url)
        tab.sign_in("admin")
        tab.visit("/dashboard/queues", status=503)
        assert tab.page.is_visible("#queues-error")
        tab.assert_no_violations()


@pytest.fixture
def follow_up_url(center) -> Iterator[str]:
    """The seeded center with a follow-up for every flagged survey, the supervisor
    leading north: some overdue, some owned, one with a recording, a note and a CRM's
    change that a newer one outran (not applied)."""
    now = center.now()
    definition = center.catalog.get("post-call")
    with center.db.session() as session:
        supervisor = session.scalar(select(User.id).where(User.username == "supervisor"))
        follow_ups.set_teams(session, supervisor, ["north"])
        opened = [
            follow_ups.open_follow_up(
                session, request_id, now=now, owners={}, definition=definition
            )
            for request_id in session.scalars(select(SurveyRequest.id).order_by(SurveyRequest.id))
        ]
        flagged = [row for row in opened if row is not None and row.team == "north"]
        for index, row in enumerate(flagged):
            row.due_at = now + timedelta(hours=index * 5 - 12)
            row.owner = "supervisor" if index % 3 == 0 else None
        recorded = set(
            session.scalars(select(Answer.request_id).where(Answer.recording_url.like("https:%")))
        )
        first = next(row for row in flagged if row.request_id in recorded)
        follow_ups.add_note(session, first, "Left a voicemail.", author="supervisor",
                            source="dashboard", at=now)  # fmt: skip
        follow_ups.update(session, first, follow_ups.Change(status="contacted"),
                          actor="supervisor", source="dashboard", at=now)  # fmt: skip
        follow_ups.update(session, first, follow_ups.Change(status="new"), actor="api:crm",
                          source="api", at=now - timedelta(minutes=5))  # fmt: skip
    with serving(center) as url:
        yield url


def test_follow_up_pages(walk, follow_up_url, center):
    with center.db.session() as session:
        north = session.scalars(
            select(FollowUp.id).where(FollowUp.team == "north").order_by(FollowUp.id)
        ).all()
        noted = session.scalar(select(FollowUpNote.follow_up_id))
        south = session.scalar(select(FollowUp.id).where(FollowUp.team == "south"))
    tab = walk(follow_up_url)
    tab.sign_in("analyst")
    tab.visit("/dashboard/follow-ups", status=403)
    assert tab.page.is_visible("#follow-ups-refused")

    tab = walk(follow_up_url)
    tab.sign_in("supervisor")
    tab.visit("/dashboard/follow-ups")
    assert tab.page.locator('#follow-ups tr[data-overdue="yes"]').count() > 0
    tab.visit("/dashboard/follow-ups?owner=&status=")
    assert tab.page.locator("#follow-ups tbody tr[data-id]").count() == len(north)
    tab.visit("/dashboard/follow-ups?owner=&status=&page=2")  # past the end: pages nav only
    assert tab.page.is_visible("#previous-page")
    tab.visit("/dashboard/follow-ups?owner=no+owner&status=new&overdue=1&team=north")
    tab.visit("/dashboard/follow-ups?owner=nobody&status=resolved")  # an empty list
    tab.visit("/dashboard/follow-ups?status=closed", status=400)
    assert tab.page.is_visible("#filter-error")
    tab.visit(f"/dashboard/follow-ups/{noted}")
    assert tab.page.locator('#history tr[data-applied="no"]').count() == 1
    assert tab.page.locator('#answers td[data-key="recording"] a').count() == 1
    tab.page.get_by_role("combobox", name="Status").select_option("resolved")
    tab.submit("#status-form", "a follow-up just resolved", 200)
    assert tab.page.is_visible("p.flash")
    tab.page.get_by_label("Add a note").fill("   ")
    tab.submit("#note-form", "a follow-up with a refused note", 400)
    assert tab.page.is_visible("#body-error")
    tab.visit(f"/dashboard/follow-ups/{south}", status=404)
    tab.assert_no_violations()

    tab = walk(follow_up_url)
    tab.sign_in("admin")
    tab.visit("/dashboard/follow-ups?owner=&status=&team=south")
    tab.visit(f"/dashboard/follow-ups/{south}")
    assert tab.page.is_visible("#assign-me-form")
    tab.assert_no_violations()
