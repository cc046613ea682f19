"""The survey editor through the Flask test client: admins create, copy, edit, retire
and restore surveys; everyone else reads; every POST checks the CSRF token; a stale save
is a 409 that keeps the admin's input; bad input of any kind is a 400 (or 403, 404, 413)
with the message beside its field, never a 500."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from aftercall.web import create_app
from aftercall.web.dashboard.survey_form import check_form, parse_form
from core.models import SurveyAuditEntry, SurveyHead
from core.survey import SurveyDefinition
from core.survey_store import create_survey, managed_survey
from core.users import create_user
from ivr.preview import call_script
from tests.dashboard.conftest import PASSWORD, csrf_from, sign_in
from tests.dashboard.dom import Element, parse
from tests.dashboard.test_survey_form import EVERY_FIELD, every_field

ADMIN, OTHER_ADMIN = "ada", "grace"
MINIMAL = {
    "name": "short",
    "questions": [{"key": "nps", "kind": "nps", "prompt": {"en": "Recommend us, 0 to 10?"}}],
}


@pytest.fixture
def editor_app(editor_runtime):
    app = create_app(runtime=editor_runtime)
    app.config["TESTING"] = True
    return app


def client_of(app, runtime, username: str, role: str):
    with runtime.db.session() as session:
        create_user(session, username, PASSWORD, role)
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


@pytest.fixture
def admin(editor_app, editor_runtime):
    return client_of(editor_app, editor_runtime, ADMIN, "admin")


@pytest.fixture
def other_admin(editor_app, editor_runtime):
    return client_of(editor_app, editor_runtime, OTHER_ADMIN, "admin")


def store(runtime, data: dict, by: str = ADMIN) -> None:
    with runtime.db.session() as session:
        create_survey(session, SurveyDefinition.from_dict(data), by=by, file_names=["post-call"])
    runtime.catalog.refresh()


def raw_text(element: Element) -> str:
    return "".join(c if isinstance(c, str) else raw_text(c) for c in element.children)


def form_data(html: str) -> dict[str, str | list[str]]:
    """What a browser submits for #survey-form as rendered (no submit button)."""
    form = parse(html).by_id("survey-form")
    data: dict[str, str | list[str]] = {}
    for element in form.iter():
        name = element.get("name")
        if not name or element.tag == "button":
            continue
        if element.tag == "input":
            if element.get("type") == "checkbox":
                if "checked" in element.attrs:
                    data[name] = "on"
                continue
            value = element.get("value", "")
        elif element.tag == "textarea":
            # The parser drops the newline right after <textarea>, as browsers do.
            value = raw_text(element).removeprefix("\n")
        elif element.tag == "select":
            chosen = [o for o in element.find_all("option") if "selected" in o.attrs]
            value = (chosen or element.find_all("option"))[0].get("value", "")
        else:
            continue
        if name in data:
            previous = data[name]
            data[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[name] = value
    return data


def page_form(client, path: str) -> dict[str, str | list[str]]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return form_data(response.text)


def as_definition(data: dict[str, str | list[str]]) -> SurveyDefinition:
    languages = data.get("languages", [])
    flat = {k: v for k, v in data.items() if isinstance(v, str)}
    checked = check_form(parse_form(flat, [languages] if isinstance(languages, str) else languages))
    assert checked.errors == (), checked.errors
    assert checked.definition is not None
    return checked.definition


def count(runtime, column) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count(column)))


def field_error(page: Element, path_id: str) -> str:
    """The error shown beside the input `path_id`, checked to be wired to it."""
    field = page.by_id(path_id)
    assert field.get("aria-invalid") == "true"
    error_id = f"{path_id}-error"
    assert error_id in (field.get("aria-describedby") or "").split()
    summary = page.by_id("error-summary")
    assert summary.find("a", href=f"#{path_id}") is not None
    return page.by_id(error_id).text


# -- creating ---------------------------------------------------------------------------


def test_admin_creates_a_survey_from_the_blank_form(admin, editor_runtime):
    data = page_form(admin, "/dashboard/surveys/new")
    assert data["name"] == "" and data["dialing.calling_hours"] == "09:00-20:00"
    data.update({"name": "billing", "title": "Billing line",
                 "questions[0].prompt.en": "Would you recommend us? Press 0 to 10.",
                 "action": "save"})  # fmt: skip
    response = admin.post("/dashboard/surveys/new", data=data)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/dashboard/surveys#survey-billing")
    assert editor_runtime.catalog.get("billing").title == "Billing line"
    assert editor_runtime.catalog.source_of("billing") == "database"
    flashed = parse(admin.get("/dashboard/surveys").text).find("p", class_="note flash")
    assert flashed is not None and "billing created: revision 1" in flashed.text
    history = parse(admin.get("/dashboard/surveys/billing/history").text).by_id("history")
    [row] = history.find("tbody").find_all("tr")
    assert (row.get("data-action"), row.get("data-by"), row.get("data-revision")) == (
        "created",
        ADMIN,
        "1",
    )


def test_every_field_round_trips_through_the_edit_page(admin, editor_runtime):
    store(editor_runtime, EVERY_FIELD)
    data = page_form(admin, "/dashboard/surveys/every-field/edit")
    assert as_definition(data) == every_field()
    # Saved unchanged: no new revision.
    response = admin.post("/dashboard/surveys/every-field/edit", data={**data, "action": "save"})
    assert response.status_code == 303
    with editor_runtime.db.session() as session:
        assert managed_survey(session, "every-field").revision == 1
    # One change, through the form: a new revision, the catalog sees it at once.
    data.update({"dialing.calling_hours": "11:00-18:00", "questions[3].prompt.es": "¿Listo?",
                 "action": "save"})  # fmt: skip
    assert admin.post("/dashboard/surveys/every-field/edit", data=data).status_code == 303
    saved = editor_runtime.catalog.get("every-field")
    assert saved.to_dict()["dialing"]["calling_hours"] == "11:00-18:00"
    assert saved.questions[3].prompts["es"] == "¿Listo?"
    assert saved.to_dict() | {"dialing": None, "questions": None} == every_field().to_dict() | {
        "dialing": None, "questions": None,
    }  # fmt: skip
    history = parse(admin.get("/dashboard/surveys/every-field/history").text).by_id("history")
    newest = history.find("tbody").find_all("tr")[0]
    assert newest.get("data-action") == "edited" and newest.get("data-revision") == "2"
    assert "dialing.calling_hours" in newest.text and "questions[3].prompt.es" in newest.text


def test_copy_a_file_survey_under_a_new_name(admin, editor_runtime):
    data = page_form(admin, "/dashboard/surveys/post-call/copy")
    assert data["name"] == "post-call-copy"
    assert as_definition(data) == replace(
        editor_runtime.catalog.get("post-call"), name="post-call-copy"
    )
    response = admin.post("/dashboard/surveys/post-call/copy", data={**data, "action": "save"})
    assert response.status_code == 303
    assert editor_runtime.catalog.source_of("post-call-copy") == "database"
    with editor_runtime.db.session() as session:
        action = session.scalar(select(SurveyAuditEntry.action))
    assert action == "copied"
    # The copy is editable; the file survey is not.
    assert admin.get("/dashboard/surveys/post-call-copy/edit").status_code == 200


def test_a_taken_name_is_refused_beside_the_name(admin, editor_runtime):
    store(editor_runtime, MINIMAL)
    for taken in ("post-call", "short"):
        data = page_form(admin, "/dashboard/surveys/post-call/copy")
        response = admin.post(
            "/dashboard/surveys/post-call/copy", data={**data, "name": taken, "action": "save"}
        )
        assert response.status_code == 400
        assert "already exists" in field_error(parse(response.text), "f-name")
        assert parse(response.text).by_id("f-name").get("value") == taken
    assert count(editor_runtime, SurveyHead.name) == 1


# -- the form's errors and moves ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "input_id", "message"),
    [
        ({"dialing.calling_hours": "07:00-22:00"}, "f-dialing-calling_hours", "08:00-21:00"),
        ({"max_tries": "lots"}, "f-max_tries", "whole number from 1 to 5"),
        ({"questions[2].when": "why <= 3"}, "f-questions-2-when", "not an earlier question"),
        ({"questions[1].kind": "stars"}, "f-questions-1-kind", "unknown kind"),
        ({"questions[0].prompt.es": ""}, "f-questions-0-prompt-es", "non-empty text"),
        ({"follow_up.when": "nps <= 6\ncsat is bad"}, "f-follow_up-when", "<question key>"),
        ({"phrases.es.thanks": "Gracias {name}"}, "f-phrases-es-thanks", "bad placeholder"),
        ({"title": "x" * 5000}, "f-title", "200 characters"),
        ({"questions[0].prompt.en": "x" * 20_000}, "f-questions-0-prompt-en", "1000 characters"),
    ],
)
def test_an_invalid_form_shows_the_message_beside_its_field(admin, changes, input_id, message):
    data = page_form(admin, "/dashboard/surveys/post-call/copy")
    data.update(changes, action="save")
    response = admin.post("/dashboard/surveys/post-call/copy", data=data)
    assert response.status_code == 400
    page = parse(response.text)
    assert message in field_error(page, input_id)
    # Everything typed is still there (a select can only offer its own options).
    kept = form_data(response.text)
    for path, value in changes.items():
        if not path.endswith(".kind"):
            assert kept[path] == value[:10_000]


@pytest.mark.parametrize(
    "data",
    [
        {},  # nothing but the token
        {"action": "save", "name": "x"},  # no questions at all
        {"action": "save", "questions[0].key": "a"},  # a question missing its fields
        {"action": "explode", "languages": ["zz", "toolong", "<b>"]},
        {"action": "save", "questions[99999999].key": "a", "questions[-1].kind": "nps"},
        {"action": "remove_question:999", "questions[0].key": "a"},
        {"action": "add_language", "new_language": "x" * 100_000},
        {"action": "save", "name": "a" * 100_000, "dialing.retry_minutes": "1," * 10_000},
        {"action": "save", "phrases.en.<script>": "x", "phrases.en.greeting": "{"},
        {"action": "save", "max_tries": "1e999", "dialing.sample_percent": "-0.0000001"},
        {"action": "move_up:²", "questions[0].key": "a"},
        {"action": "save", "max_tries": "²", "dialing.sample_percent": "٣"},
    ],
)
def test_garbage_posts_are_a_400_or_a_form_never_a_500(admin, data):
    token = csrf_from(admin.get("/dashboard/surveys/new").text)
    response = admin.post("/dashboard/surveys/new", data={"csrf_token": token, **data})
    assert response.status_code in (200, 400), response.text[:500]
    assert parse(response.text).find("form", id="survey-form") is not None


def test_a_body_past_the_request_limit_is_refused(admin):
    token = csrf_from(admin.get("/dashboard/surveys/new").text)
    response = admin.post(
        "/dashboard/surveys/new", data={"csrf_token": token, "title": "x" * 2_000_000}
    )
    assert response.status_code == 413


def test_adding_a_question_and_a_language_without_javascript(admin):
    data = page_form(admin, "/dashboard/surveys/post-call/copy")
    data["title"] = "typed before adding"
    response = admin.post(
        "/dashboard/surveys/post-call/copy", data={**data, "action": "add_question"}
    )
    assert response.status_code == 200
    page = parse(response.text)
    assert len(page.find_all("fieldset", class_="question")) == 4
    assert "autofocus" in page.by_id("f-questions-3-key").attrs
    data = form_data(response.text)
    assert data["title"] == "typed before adding"

    data["new_language"] = "de"
    response = admin.post(
        "/dashboard/surveys/post-call/copy", data={**data, "action": "add_language"}
    )
    data = form_data(response.text)
    assert data["languages"] == ["en", "es", "pl", "de"]
    assert data["questions[3].prompt.de"] == "" and data["title"] == "typed before adding"

    data.update({"action": "move_up:3"})
    moved = form_data(admin.post("/dashboard/surveys/post-call/copy", data=data).text)
    assert (moved["questions[2].key"], moved["questions[3].key"]) == ("", "improve")

    response = admin.post(
        "/dashboard/surveys/post-call/copy",
        data={**data, "new_language": "xx1", "action": "add_language"},
    )
    assert response.status_code == 400
    assert "two-letter" in field_error(parse(response.text), "f-new_language")


def test_preview_of_the_unsaved_form(admin, editor_runtime):
    data = page_form(admin, "/dashboard/surveys/post-call/copy")
    data["questions[0].prompt.pl"] = "Zupełnie nowe pytanie?"
    response = admin.post("/dashboard/surveys/post-call/copy", data={**data, "action": "preview"})
    assert response.status_code == 200
    unsaved = as_definition(form_data(response.text))
    settings = editor_runtime.settings
    expected = call_script(unsaved, "pl", settings.company_name, settings.callback_number)
    section = parse(response.text).by_id("live-preview").find("section", data_language="pl")
    shown = [q.text for q in section.find_all("blockquote")]
    assert shown == [line for scene in expected.scenes for line in scene.lines]
    assert "Zupełnie nowe pytanie?" in shown

    # The script's endpoint answers the same fragment for the form as posted.
    fragment = admin.post("/dashboard/surveys/live-preview", data=data)
    assert fragment.status_code == 200
    section = parse(fragment.text).find("section", data_language="pl")
    assert [q.text for q in section.find_all("blockquote")] == shown
    data["dialing.calling_hours"] = "nonsense"
    waiting = parse(admin.post("/dashboard/surveys/live-preview", data=data).text)
    assert "dialing.calling_hours" in waiting.by_id("preview-waiting").text


# -- who may do what ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["analyst", "supervisor"])
def test_only_admins_change_surveys(editor_app, editor_runtime, admin, role):
    store(editor_runtime, MINIMAL)
    reader = client_of(editor_app, editor_runtime, f"reader-{role}", role)
    token = csrf_from(reader.get("/dashboard/surveys").text)
    for path in ("/new", "/post-call/copy", "/short/edit", "/short/retire", "/short/restore"):
        assert reader.get(f"/dashboard/surveys{path}").status_code == 403, path
        posted = reader.post(
            f"/dashboard/surveys{path}",
            data={"csrf_token": token, "action": "save", "revision": "1"},
        )
        assert posted.status_code == 403, path
    assert (
        reader.post("/dashboard/surveys/live-preview", data={"csrf_token": token}).status_code
        == 403
    )
    # Reading is for everyone, without the admin's links.
    listing = parse(reader.get("/dashboard/surveys/manage").text)
    assert listing.find(id="survey-short") is not None
    assert listing.find(id="edit-short") is None and listing.find(id="new-survey") is None
    assert reader.get("/dashboard/surveys/short/history").status_code == 200
    with editor_runtime.db.session() as session:
        assert managed_survey(session, "short").revision == 1


def test_every_post_checks_the_csrf_token(admin, editor_runtime):
    store(editor_runtime, MINIMAL)
    data = page_form(admin, "/dashboard/surveys/short/edit")
    for token in (None, "forged"):
        forged = {k: v for k, v in data.items() if k != "csrf_token"}
        if token:
            forged["csrf_token"] = token
        for path in ("/new", "/short/edit", "/short/retire", "/live-preview"):
            response = admin.post(f"/dashboard/surveys{path}", data={**forged, "action": "save"})
            assert response.status_code == 400, path
    assert count(editor_runtime, SurveyAuditEntry.id) == 1


def test_file_surveys_are_read_only(admin):
    for path in ("/post-call/edit", "/post-call/retire", "/post-call/restore"):
        response = admin.get(f"/dashboard/surveys{path}")
        assert response.status_code == 403
        page = parse(response.text)
        assert "read from a file" in page.by_id("file-survey-message").text
        assert page.by_id("copy-post-call").get("href") == "/dashboard/surveys/post-call/copy"
    token = csrf_from(admin.get("/dashboard/surveys/new").text)
    posted = admin.post("/dashboard/surveys/post-call/edit", data={"csrf_token": token})
    assert posted.status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/nothing/edit", "/nothing/copy", "/nothing/retire", "/nothing/restore", "/nothing/history"],
)
def test_an_unknown_survey_is_a_404(admin, path):
    assert admin.get(f"/dashboard/surveys{path}").status_code == 404


# -- two admins ---------------------------------------------------------------------------


def test_the_second_save_gets_a_conflict_and_keeps_its_input(admin, other_admin, editor_runtime):
    store(editor_runtime, MINIMAL)
    mine = page_form(admin, "/dashboard/surveys/short/edit")
    theirs = page_form(other_admin, "/dashboard/surveys/short/edit")
    assert mine["revision"] == theirs["revision"] == "1"

    theirs.update({"title": "Grace's title", "action": "save"})
    assert other_admin.post("/dashboard/surveys/short/edit", data=theirs).status_code == 303

    mine.update(
        {"title": "Ada's title", "questions[0].prompt.en": "Ada's prompt?", "action": "save"}
    )
    response = admin.post("/dashboard/surveys/short/edit", data=mine)
    assert response.status_code == 409
    page = parse(response.text)
    assert page.by_id("conflict-message").text.startswith(f"{OTHER_ADMIN} saved revision 2 at ")
    assert "while you were editing" in page.by_id("conflict-message").text
    assert "Grace's title" in raw_text(page.by_id("saved-version"))
    kept = form_data(response.text)
    assert (kept["title"], kept["questions[0].prompt.en"]) == ("Ada's title", "Ada's prompt?")
    assert kept["revision"] == "2"  # saving again replaces theirs, knowingly
    assert editor_runtime.catalog.get("short").title == "Grace's title"

    assert (
        admin.post("/dashboard/surveys/short/edit", data={**kept, "action": "save"}).status_code
        == 303
    )
    assert editor_runtime.catalog.get("short").title == "Ada's title"
    with editor_runtime.db.session() as session:
        assert managed_survey(session, "short").revision == 3


def test_a_preview_before_saving_keeps_the_revision_the_form_was_opened_at(
    admin, other_admin, editor_runtime
):
    """A round trip (Preview, add a question) re-renders the form: it must not move the
    form past another admin's save, or the save would overwrite it with no conflict."""
    store(editor_runtime, MINIMAL)
    mine = page_form(admin, "/dashboard/surveys/short/edit")
    theirs = page_form(other_admin, "/dashboard/surveys/short/edit")
    theirs.update({"title": "Grace's title", "action": "save"})
    assert other_admin.post("/dashboard/surveys/short/edit", data=theirs).status_code == 303

    for action in ("preview", "add_question"):
        mine.update({"title": "Ada's title", "action": action})
        response = admin.post("/dashboard/surveys/short/edit", data=mine)
        assert response.status_code == 200, response.text[:300]
        mine = form_data(response.text)
        assert mine["revision"] == "1"
    if "questions[1].key" in mine:  # the added question, left blank: remove it again
        mine = form_data(
            admin.post(
                "/dashboard/surveys/short/edit", data={**mine, "action": "remove_question:1"}
            ).text
        )
    response = admin.post("/dashboard/surveys/short/edit", data={**mine, "action": "save"})
    assert response.status_code == 409
    assert editor_runtime.catalog.get("short").title == "Grace's title"


@pytest.mark.parametrize(
    ("changes", "input_id", "message"),
    [
        ({"questions[0].prompt.en": "Rate\x0cus"}, "f-questions-0-prompt-en", "U+000C"),
        ({"title": "A\x00title"}, "f-title", "U+0000"),
        ({"phrases.en.greeting": "Hi {company.upper}"}, "f-phrases-en-greeting", "placeholder"),
        (
            {"phrases.en.greeting": "Hi {company:>99999999999}"},
            "f-phrases-en-greeting",
            "placeholder",
        ),
    ],
)
def test_text_a_call_cannot_carry_is_refused_beside_its_field(
    admin, editor_runtime, changes, input_id, message
):
    data = page_form(admin, "/dashboard/surveys/post-call/copy")
    data.update(changes)
    for action in ("preview", "save"):
        response = admin.post("/dashboard/surveys/post-call/copy", data={**data, "action": action})
        assert response.status_code == 400, response.text[:300]
        assert message in field_error(parse(response.text), input_id)
    token = csrf_from(admin.get("/dashboard/surveys/new").text)
    fragment = admin.post("/dashboard/surveys/live-preview", data={**data, "csrf_token": token})
    assert fragment.status_code == 200
    assert count(editor_runtime, SurveyHead.name) == 0


@pytest.mark.parametrize("path", ["edit", "retire", "restore", "history", "copy"])
def test_a_name_no_survey_can_have_is_a_404(admin, path):
    assert admin.get(f"/dashboard/surveys/a%00b/{path}").status_code == 404
    assert admin.get(f"/dashboard/surveys/{'x' * 300}/{path}").status_code == 404


def test_a_stale_or_bad_revision(admin, editor_runtime):
    store(editor_runtime, MINIMAL)
    data = page_form(admin, "/dashboard/surveys/short/edit")
    for revision in ("", "x", "-1", "1" * 40, "²", "1²"):
        response = admin.post(
            "/dashboard/surveys/short/edit",
            data={**data, "revision": revision, "action": "save", "title": "t"},
        )
        assert response.status_code == 400, revision
    response = admin.post(
        "/dashboard/surveys/short/edit",
        data={**data, "revision": "7", "action": "save", "title": "t"},
    )
    assert response.status_code == 409


# -- retire, restore, history ---------------------------------------------------------------


def confirm(client, path: str, revision: str | None = None):
    page = parse(client.get(path).text)
    form = page.by_id("confirm-form")
    data = {i.get("name"): i.get("value") for i in form.find_all("input")}
    if revision is not None:
        data["revision"] = revision
    return client.post(path, data=data)


def test_retire_and_restore(admin, other_admin, editor_runtime):
    store(editor_runtime, MINIMAL)
    response = confirm(admin, "/dashboard/surveys/short/retire")
    assert response.status_code == 303
    assert "short" not in editor_runtime.catalog
    listing = parse(admin.get("/dashboard/surveys/manage").text)
    assert listing.by_id("survey-short").get("data-state") == "retired"
    assert listing.find(id="restore-short") is not None
    assert admin.get("/dashboard/surveys/short/retire").status_code == 409  # already retired
    # A retired survey can still be copied, and read; no test call until it is restored.
    assert admin.get("/dashboard/surveys/short/copy").status_code == 200
    editing = parse(admin.get("/dashboard/surveys/short/edit").text)
    assert editing.find(id="test-call-link") is None
    assert editing.find(id="test-call-retired") is not None

    assert confirm(other_admin, "/dashboard/surveys/short/restore", revision="1").status_code == 409
    assert confirm(admin, "/dashboard/surveys/short/restore").status_code == 303
    assert editor_runtime.catalog.get("short").name == "short"
    assert parse(admin.get("/dashboard/surveys/short/edit").text).find(id="test-call-link")
    history = parse(admin.get("/dashboard/surveys/short/history").text).by_id("history")
    rows = history.find("tbody").find_all("tr")
    assert [(r.get("data-action"), r.get("data-revision")) for r in rows] == [
        ("restored", "3"), ("retired", "2"), ("created", "1"),
    ]  # fmt: skip


def test_the_history_of_a_file_survey_says_where_it_lives(signed_in):
    response = signed_in.get("/dashboard/surveys/post-call/history")
    assert response.status_code == 200
    assert "read from a file" in parse(response.text).by_id("file-survey-note").text
