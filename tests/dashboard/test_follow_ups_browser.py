"""The Follow-ups pages in headless Chromium: a team lead signs in, follows the nav link,
finds the overdue follow-up first, takes it, writes a note and resolves it, with every
control found by its role and label and no Content-Security-Policy violation on the way;
and the limits: an analyst is refused with an explanation, another team's lead gets 404.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.models import FollowUp, FollowUpNote
from scoring import follow_ups
from tests.dashboard.conftest import PASSWORD
from tests.dashboard.test_browser import browser, live_url  # noqa: F401 - shared fixtures
from tests.dashboard.test_follow_ups import (  # noqa: F401 - shared fixtures
    NOW,
    PHONE,
    add,
    people,
    runtime,
)

pytestmark = pytest.mark.browser


class Tab:
    """A browser tab that collects console errors (CSP violations among them)."""

    def __init__(self, browser, base_url: str):  # noqa: F811
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(5000)
        self.base_url = base_url
        self.problems: list[str] = []
        self.page.on(
            "console", lambda m: self.problems.append(m.text) if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))

    def sign_in(self, username: str) -> None:
        self.page.goto(f"{self.base_url}/dashboard")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in").click()
        assert self.page.url == f"{self.base_url}/dashboard"

    def click(self, role: str, name: str) -> None:
        with self.page.expect_navigation():
            self.page.get_by_role(role, name=name, exact=True).click()

    def close(self) -> None:
        self.context.close()


def flash(page) -> str:
    return page.inner_text("p.flash").strip()


def test_a_team_lead_takes_the_overdue_one_notes_it_and_resolves_it(
    browser,  # noqa: F811
    live_url,  # noqa: F811
    runtime,  # noqa: F811
    people,  # noqa: F811
):
    later = add(runtime, due_in=timedelta(hours=20))
    overdue = add(runtime, due_in=-timedelta(hours=5), comment="nobody called me back")
    add(runtime, team="south", due_in=-timedelta(days=1))  # sam's team: not hers to see
    tab = Tab(browser, live_url)
    page = tab.page
    tab.sign_in("sue")

    tab.click("link", "Follow-ups")
    assert page.url == f"{live_url}/dashboard/follow-ups"
    assert page.is_visible("#no-follow-ups")  # none is hers yet
    tab.click("link", "Unassigned")
    ids = page.eval_on_selector_all(
        "#follow-ups tbody tr[data-id]", "rows => rows.map(r => Number(r.dataset.id))"
    )
    assert ids == [overdue, later]
    first = page.locator(f'#follow-ups tr[data-id="{overdue}"]')
    assert "Overdue" in first.locator('td[data-key="due"]').inner_text()
    assert "Overdue" not in page.inner_text(f'#follow-ups tr[data-id="{later}"] td[data-key="due"]')

    with page.expect_navigation():
        first.get_by_role("link").click()
    assert page.url == f"{live_url}/dashboard/follow-ups/{overdue}"
    assert page.inner_text('#call dd[data-key="phone"]') == PHONE
    assert page.inner_text('#answers tr[data-question="improve"] td[data-key="transcript"]') == (
        "nobody called me back"
    )

    page.get_by_role("combobox", name="Owner").select_option(label="sue (me)")
    tab.click("button", "Assign")
    assert flash(page) == "Assigned to sue."
    assert page.inner_text('#state dd[data-key="owner"]') == "sue"

    page.get_by_label("Add a note").fill("Called back, refund on its way.")
    tab.click("button", "Add note")
    assert flash(page) == "Note added."
    assert page.inner_text('#notes span[data-key="body"]') == "Called back, refund on its way."

    page.get_by_role("combobox", name="Status").select_option(label="Resolved")
    tab.click("button", "Change status")
    assert flash(page) == "Status: Resolved."
    assert page.inner_text('#state dd[data-key="status"]') == "Resolved"
    history = page.eval_on_selector_all(
        "#history tbody tr", "rows => rows.map(r => [r.dataset.field, r.dataset.applied])"
    )
    assert history == [["opened", "yes"], ["owner", "yes"], ["note", "yes"], ["status", "yes"]]

    # Back on her list it is gone from what is open, and is there among the resolved.
    tab.click("link", "← Follow-ups")
    assert page.is_visible("#no-follow-ups")
    page.get_by_role("combobox", name="Status").select_option(label="Resolved")
    tab.click("button", "Show")
    assert page.eval_on_selector_all(
        "#follow-ups tbody tr[data-id]", "rows => rows.map(r => Number(r.dataset.id))"
    ) == [overdue]  # fmt: skip

    with runtime.db.session() as session:
        row = session.get(FollowUp, overdue)
        assert (row.owner, row.status, row.closed_at) == ("sue", "resolved", NOW)
        (note,) = session.scalars(select(FollowUpNote)).all()
        assert (note.author, note.follow_up_id) == ("sue", overdue)
        sources = {change.source for change in follow_ups.history(session, overdue)[1:]}
        assert sources == {"dashboard"}
    assert tab.problems == [], tab.problems
    tab.close()


def test_a_refused_note_comes_back_with_its_message(
    browser,  # noqa: F811
    live_url,  # noqa: F811
    runtime,  # noqa: F811
    people,  # noqa: F811
):
    follow_up_id = add(runtime, owner="sue")
    tab = Tab(browser, live_url)
    page = tab.page
    tab.sign_in("sue")
    page.goto(f"{live_url}/dashboard/follow-ups/{follow_up_id}")
    page.get_by_label("Add a note").fill("   ")  # not empty to the browser; empty to us
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Add note").click()
    assert navigation.value is not None and navigation.value.status == 400
    assert page.inner_text("#body-error") == "a note needs some text"
    assert page.get_attribute("#body", "aria-describedby") == "body-error"
    assert tab.problems == [
        "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    ], tab.problems
    tab.close()


def test_an_analyst_is_refused_and_another_team_s_lead_finds_nothing(
    browser,  # noqa: F811
    live_url,  # noqa: F811
    runtime,  # noqa: F811
    people,  # noqa: F811
):
    follow_up_id = add(runtime, team="north")
    analyst = Tab(browser, live_url)
    analyst.sign_in("ann")
    assert analyst.page.get_by_role("link", name="Follow-ups").count() == 0
    response = analyst.page.goto(f"{live_url}/dashboard/follow-ups")
    assert response is not None and response.status == 403
    assert "only the people who call them" in analyst.page.inner_text("#follow-ups-refused")
    assert analyst.page.locator("#follow-ups").count() == 0
    analyst.close()

    south = Tab(browser, live_url)
    south.sign_in("sam")
    response = south.page.goto(f"{live_url}/dashboard/follow-ups/{follow_up_id}")
    assert response is not None and response.status == 404
    assert PHONE not in south.page.content()
    south.page.goto(f"{live_url}/dashboard/follow-ups?owner=&status=")
    assert south.page.is_visible("#no-follow-ups")
    south.close()
