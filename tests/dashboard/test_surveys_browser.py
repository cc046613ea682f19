"""Survey management in headless Chromium: from sign-in through the nav link to the
surveys page, a preview in another language, and the test-call form's error, with no
Content-Security-Policy violation on the way."""

from __future__ import annotations

import pytest

from core.users import create_user
from ivr.preview import call_script
from tests.dashboard.conftest import PASSWORD
from tests.dashboard.test_browser import browser, live_url  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.browser


def test_surveys_page_and_a_preview(browser, live_url, runtime):  # noqa: F811
    with runtime.db.session() as session:
        create_user(session, "ada", PASSWORD, "admin")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(5000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{live_url}/dashboard/surveys")
    assert page.url.startswith(f"{live_url}/dashboard/login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    assert page.url == f"{live_url}/dashboard/surveys"

    questions = page.eval_on_selector_all(
        "#survey-post-call table.questions td[data-key=key]",
        "cells => cells.map(c => c.textContent)",
    )
    assert questions == ["nps", "csat", "improve"]
    assert page.inner_text("#survey-post-call td[data-key=calling_hours]") == "09:00-20:00"

    with page.expect_navigation():
        page.click("#preview-post-call-pl")
    assert page.url == f"{live_url}/dashboard/surveys/post-call/preview/pl"
    settings = runtime.settings
    expected = call_script(
        runtime.catalog.get("post-call"), "pl", settings.company_name, settings.callback_number
    )
    shown = page.eval_on_selector_all(
        "#call-script blockquote.line", "lines => lines.map(l => l.textContent)"
    )
    assert shown == [line for scene in expected.scenes for line in scene.lines]
    assert page.is_visible("#scene-improve")

    # Back to the list by the nav link, then the test-call form with a number it refuses.
    with page.expect_navigation():
        page.click("#nav-surveys")
    with page.expect_navigation():
        page.click("#test-call-post-call")
    page.fill("input[name=phone]", "12345")
    with page.expect_navigation():
        page.click("#test-call-form button[type=submit]")
    assert "country code" in page.inner_text("#test-call-error")
    assert page.input_value("input[name=phone]") == "12345"

    # The refused form comes back with status 400, which Chromium reports; nothing else.
    assert problems == [
        "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    ], problems
    context.close()
