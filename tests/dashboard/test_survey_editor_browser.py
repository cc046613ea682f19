"""The survey editor in headless Chromium, every page checked with axe-core (WCAG 2.1 A
and AA): creating a survey, a refused field with its message beside it, the live
preview refreshing as the admin types, two admins saving the same survey from two
browser contexts (the second gets the conflict, its input still in the form), and
adding a question with the keyboard alone. No Content-Security-Policy violation or
script error on the way (Chromium reports each on the console)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.survey import SurveyDefinition
from core.survey_store import create_survey
from core.users import create_user
from tests.dashboard.conftest import PASSWORD
from tests.dashboard.test_accessibility import Walk, serving
from tests.dashboard.test_browser import chromium

pytestmark = pytest.mark.browser

SHORT = {
    "name": "short",
    "title": "A short survey",
    "questions": [{"key": "nps", "kind": "nps", "prompt": {"en": "Recommend us, 0 to 10?"}}],
}


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


@pytest.fixture
def editor_runtime(editor_runtime):
    """conftest's, with two admins and an analyst, and one database survey."""
    live = editor_runtime
    with live.db.session() as session:
        for username, role in (("ada", "admin"), ("grace", "admin"), ("ann", "analyst")):
            create_user(session, username, PASSWORD, role)
        create_survey(
            session, SurveyDefinition.from_dict(SHORT), by="grace", file_names=["post-call"]
        )
    return live


@pytest.fixture
def live_url(editor_runtime) -> Iterator[str]:
    with serving(editor_runtime) as url:
        yield url


class EditorTab(Walk):
    """A tab that runs axe on every page and collects script and CSP errors."""

    def __init__(self, browser, base_url: str):
        super().__init__(browser, base_url)
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(m.text)
                if m.type == "error" and "status of 4" not in m.text
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))

    def click_and_check(self, selector: str, what: str, status: int = 200) -> None:
        with self.page.expect_navigation() as navigation:
            self.page.click(selector)
        assert navigation.value is not None and navigation.value.status == status, what
        self.check(what)


@pytest.fixture
def tab(browser, live_url) -> Iterator:
    tabs: list[EditorTab] = []

    def start(username: str) -> EditorTab:
        tabs.append(EditorTab(browser, live_url))
        tabs[-1].sign_in(username)
        return tabs[-1]

    yield start
    for opened in tabs:
        assert opened.problems == [], opened.problems
        opened.close()


def test_create_a_survey_fixing_a_refused_field(tab, editor_runtime):
    ada = tab("ada")
    ada.visit("/dashboard/surveys")
    ada.click_and_check("#manage-surveys", "the survey list")
    ada.click_and_check("#new-survey", "a new survey")
    page = ada.page
    assert page.evaluate("document.activeElement.id") == "f-name"
    page.get_by_label("Name", exact=True).fill("Billing Line")
    page.get_by_label("Prompt (en)").fill("Would you recommend us? Press 0 to 10.")
    page.get_by_label("Calling hours").fill("07:00-20:00")
    ada.click_and_check("#save-button", "a new survey, refused", status=400)

    # The first error is the name's: beside the field, in the summary, linked, focused.
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert "lowercase letters" in page.inner_text("#f-name-error")
    assert page.get_attribute("#f-name", "aria-invalid") == "true"
    assert "f-name-error" in page.get_attribute("#f-name", "aria-describedby")
    page.click("#error-summary a")
    assert page.evaluate("document.activeElement.id") == "f-name"
    assert page.input_value("#f-questions-0-prompt-en") == "Would you recommend us? Press 0 to 10."

    page.get_by_label("Name", exact=True).fill("billing-line")
    ada.click_and_check("#save-button", "the same survey, next refusal", status=400)
    assert "08:00-21:00" in page.inner_text("#f-dialing-calling_hours-error")
    page.get_by_label("Calling hours").fill("08:30-20:00")
    ada.click_and_check("#save-button", "the surveys page after creating one")
    assert page.url.endswith("/dashboard/surveys#survey-billing-line")
    assert "billing-line created" in page.inner_text('p.flash[data-category="done"]')
    assert editor_runtime.catalog.get("billing-line").to_dict()["dialing"]["calling_hours"] == (
        "08:30-20:00"
    )
    ada.assert_no_violations()


def test_the_preview_follows_the_typing(tab):
    ada = tab("ada")
    ada.visit("/dashboard/surveys/short/edit")
    page = ada.page
    region = page.locator("#live-preview")
    status = page.locator("#live-preview-status")
    # Only the short status line is live, not the whole script.
    assert region.get_attribute("aria-live") is None
    assert status.get_attribute("aria-live") == "polite"
    assert "Recommend us, 0 to 10?" in region.inner_text()
    page.get_by_label("Prompt (en)").fill("How was the call today? Press 0 to 10.")
    # Polled by locator: the page's CSP forbids the eval that wait_for_function needs.
    region.locator("blockquote", has_text="How was the call today?").first.wait_for()
    assert "Recommend us, 0 to 10?" not in region.inner_text()
    assert status.inner_text() == "Preview updated."
    # An invalid form: the preview says what it waits for, the page itself unchanged.
    page.get_by_label("Calling hours").fill("late")
    page.wait_for_selector("#preview-waiting")
    assert "dialing.calling_hours" in page.inner_text("#preview-waiting")
    status.filter(has_text="Preview waiting").wait_for()
    ada.check("the editor with the live preview waiting")
    # The Preview button does the same without the script.
    page.get_by_label("Calling hours").fill("09:00-17:00")
    ada.click_and_check("#preview-button", "the editor after Preview")
    assert "How was the call today?" in region.inner_text()
    ada.assert_no_violations()


def test_two_admins_save_the_same_survey(tab, editor_runtime):
    ada, grace = tab("ada"), tab("grace")
    ada.visit("/dashboard/surveys/short/edit")
    grace.visit("/dashboard/surveys/short/edit")

    grace.page.get_by_label("Title").fill("Grace's title")
    grace.click_and_check("#save-button", "the surveys page after saving")
    ada.page.get_by_label("Title").fill("Ada's title")
    ada.page.get_by_label("Prompt (en)").fill("Ada's prompt, 0 to 10?")
    ada.click_and_check("#save-button", "the editor after a conflict", status=409)

    message = ada.page.inner_text("#conflict-message")
    assert message.startswith("grace saved revision 2 at ") and "while you were editing" in message
    assert ada.page.input_value("#f-title") == "Ada's title"
    assert ada.page.input_value("#f-questions-0-prompt-en") == "Ada's prompt, 0 to 10?"
    ada.page.click("#saved-version summary")
    assert 'title = "Grace\'s title"' in ada.page.inner_text("#saved-version pre")
    assert editor_runtime.catalog.get("short").title == "Grace's title"

    ada.click_and_check("#save-button", "the surveys page after saving over")
    assert editor_runtime.catalog.get("short").title == "Ada's title"
    ada.assert_no_violations()
    grace.assert_no_violations()


def tab_to(page, element_id: str) -> None:
    """Press Tab until the element `element_id` has the focus."""
    for _ in range(300):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    pytest.fail(f"Tab never reached #{element_id}")


def test_adding_a_question_with_the_keyboard_alone(tab, editor_runtime):
    ada = tab("ada")
    ada.visit("/dashboard/surveys/short/edit")
    page = ada.page
    tab_to(page, "add-question")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    ada.check("the editor with a question added")
    assert page.evaluate("document.activeElement.id") == "f-questions-1-key"
    page.keyboard.type("happy")
    page.keyboard.press("Tab")  # the kind
    page.keyboard.press("End")  # comment, the last kind
    assert page.input_value("#f-questions-1-kind") == "comment"
    page.keyboard.press("Tab")  # the prompt
    page.keyboard.type("Anything else? Tell us after the tone.")
    # Enter in a text field presses the form's first button: Preview, never Save.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "f-questions-1-key"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Anything else? Tell us after the tone." in page.inner_text("#live-preview")
    assert "short" in editor_runtime.catalog and not editor_runtime.catalog.get("short").question(
        "happy"
    )
    tab_to(page, "save-button")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    saved = editor_runtime.catalog.get("short").question("happy")
    assert saved is not None and saved.prompts["en"].startswith("Anything else?")
    ada.assert_no_violations()


def test_every_editor_page_passes_axe(tab):
    ann = tab("ann")
    ann.visit("/dashboard/surveys/manage")
    ann.visit("/dashboard/surveys/short/history")
    ann.visit("/dashboard/surveys/short/edit", status=403)
    ann.assert_no_violations()

    ada = tab("ada")
    ada.visit("/dashboard/surveys/manage")
    ada.visit("/dashboard/surveys/post-call/copy")
    ada.page.get_by_label("Add a language (two-letter code, like es)").fill("d")
    ada.click_and_check("#add-language", "the editor refusing a language", status=400)
    ada.page.get_by_label("Add a language (two-letter code, like es)").fill("de")
    ada.click_and_check("#add-language", "the editor with a language added")
    ada.page.click("details.phrases[data-language=de] summary")
    ada.check("the editor with phrases opened")
    ada.visit("/dashboard/surveys/post-call/edit", status=403)
    ada.visit("/dashboard/surveys/post-call/history")
    ada.visit("/dashboard/surveys/short/retire")
    ada.click_and_check("#confirm-form button[type=submit]", "the list after retiring")
    ada.visit("/dashboard/surveys/short/retire", status=409)
    ada.visit("/dashboard/surveys/short/restore")
    ada.visit("/dashboard/surveys/short/history")
    ada.visit("/dashboard/surveys/nothing/edit", status=404)
    ada.assert_no_violations()
