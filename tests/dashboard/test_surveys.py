"""Survey management in the dashboard: the survey list, the call preview, test calls.

The preview's promise is that it cannot drift from the calls: the drift tests play
whole calls through the signed webhooks and hold the preview page to exactly the
sentences those calls said, in every language. The test call goes once through the
whole path: the form, intake into the call queue on a real Redis, a real rq worker,
phonesim, the webhooks, and the status page.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq import SimpleWorker
from rq.job import Job
from sqlalchemy import func, select, update

from aftercall.web import create_app
from core.config import DEFAULT_SURVEYS_DIR
from core.models import Answer, CallAttempt, OptOut, RequestState, SurveyRequest
from core.runtime import use_worker_runtime
from core.survey import SurveyCatalog
from core.survey_versions import version_for
from core.users import create_user
from dialer import scheduling
from dialer.scheduling import CALL_QUEUE
from dialer.trial_call import TEST_CALL_PREFIX
from ivr.preview import call_script
from phonesim import Comment, Persona
from tests.dashboard.conftest import PASSWORD, add_calls, csrf_from, month_of_calls, sign_in
from tests.dashboard.dom import parse
from tests.e2e.conftest import campaign  # noqa: F401 - the e2e fixture, for the whole-path test
from tests.ivr.conftest import SignedCall

ADMIN = "ada"
# Monday 18:05 UTC: 10:05 in California, inside the default calling hours.
MONDAY = datetime(2026, 11, 23, 18, 5, tzinfo=UTC)
PHONE = "+14155550123"


@pytest.fixture
def admin(runtime) -> str:
    with runtime.db.session() as session:
        create_user(session, ADMIN, PASSWORD, "admin")
    return ADMIN


@pytest.fixture
def dialing_runtime(runtime, redis_url):
    """The test runtime on a real Redis, with the dialer's clock on a Monday."""
    return replace(
        runtime, settings=runtime.settings.with_overrides(redis_url=redis_url), now=lambda: MONDAY
    )


@pytest.fixture
def admin_client(dialing_runtime, admin):
    app = create_app(runtime=dialing_runtime)
    app.config["TESTING"] = True
    client = app.test_client()
    assert sign_in(client, ADMIN).status_code == 302
    return client


def client_for(app, username: str, role: str, runtime):
    with runtime.db.session() as session:
        create_user(session, username, PASSWORD, role)
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def count(runtime, column) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count(column)))


def post_test_call(client, survey: str = "post-call", **form: str):
    token = csrf_from(client.get(f"/dashboard/surveys/{survey}/test-call").text)
    data = {"csrf_token": token, "phone": PHONE, "language": "en", **form}
    return client.post(f"/dashboard/surveys/{survey}/test-call", data=data)


def survey_dir(tmp_path: Path, **changes: str) -> Path:
    """A survey folder holding post-call.toml with some lines replaced."""
    text = (DEFAULT_SURVEYS_DIR / "post-call.toml").read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / "post-call.toml").write_text(text)
    return folder


# -- the list -------------------------------------------------------------------------


def test_surveys_page_lists_questions_languages_dialing_and_versions(signed_in, runtime):
    add_calls(runtime, month_of_calls())
    catalog = runtime.catalog
    current = catalog.get("post-call")
    with runtime.db.session() as session:
        v1 = version_for(session, current).id
        session.execute(update(SurveyRequest).values(survey_version_id=v1))
        # An earlier edit of the file, and a survey since removed from the folder.
        version_for(session, replace(current, title="Before the edit"))
        version_for(session, replace(current, name="old-survey"))
    with runtime.db.session() as session:
        requests = session.scalar(select(func.count(SurveyRequest.id)))
        answers = session.scalar(select(func.count(Answer.id)))

    response = signed_in.get("/dashboard/surveys")
    assert response.status_code == 200
    page = parse(response.text)
    card = page.by_id("survey-post-call")
    questions = [
        {cell.get("data-key"): cell.text for cell in row.find_all("td") if cell.get("data-key")}
        for row in card.find("table", class_="questions").find("tbody").find_all("tr")
    ]
    assert [(q["key"], q["kind"], q["answer"], q["when"]) for q in questions] == [
        ("nps", "nps", "keys 0–10", "always"),
        ("csat", "csat", "keys 1–5", "always"),
        ("improve", "comment", "recorded, up to 60 s", "when nps <= 6"),
    ]
    assert questions[0]["prompt"] == current.questions[0].prompts["en"]
    links = card.find_all("a", class_="preview-link")
    assert [a.get("data-language") for a in links] == ["en", "es", "pl"]
    assert links[1].get("href") == "/dashboard/surveys/post-call/preview/es"
    dialing = {
        td.get("data-key"): td.get("data-value")
        for td in card.find("table", class_="dialing").find_all("td")
    }
    assert dialing == {
        "sample_percent": "100.0", "fatigue_days": "30", "delay_minutes": "5",
        "valid_hours": "24", "calling_hours": "09:00-20:00", "allow_sundays": "False",
        "max_attempts": "3", "retry_minutes": "30,120", "retry_voicemail": "False",
    }  # fmt: skip

    versions = card.find("table", class_="versions").find("tbody").find_all("tr")
    assert [
        (
            v.get("data-version"),
            v.get("data-current"),
            v.get("data-requests"),
            v.get("data-answers"),
        )
        for v in versions
    ] == [("2", "no", "0", "0"), ("1", "yes", str(requests), str(answers))]
    assert versions[1].get("data-sha256") == current.content_sha256()
    assert requests > 0 and answers > 0

    retired = page.by_id("survey-old-survey")
    assert retired.find(id="retired-old-survey") is not None
    assert [v.get("data-version") for v in retired.find_all("tr", **{"data-version": "1"})] == ["1"]
    # Only admins are offered test calls.
    assert card.find("a", class_="test-call-link") is None
    assert page.by_id("nav-surveys").get("href") == "/dashboard/surveys"


def test_a_survey_never_used_has_no_version_and_the_page_makes_none(signed_in, runtime):
    page = parse(signed_in.get("/dashboard/surveys").text)
    (row,) = (
        page.by_id("survey-post-call")
        .find("table", class_="versions")
        .find_all("tr", class_="empty")
    )
    assert "None yet" in row.text
    assert count(runtime, SurveyRequest.id) == 0
    from core.models import SurveyVersion

    assert count(runtime, SurveyVersion.id) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/surveys",
        "/dashboard/surveys/post-call/preview/en",
        "/dashboard/surveys/post-call/test-call",
        "/dashboard/surveys/test-calls/1",
    ],
)
def test_signed_out_users_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/dashboard/login?next=")


def test_pages_carry_the_dashboard_security_headers(signed_in):
    response = signed_in.get("/dashboard/surveys/post-call/preview/en")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"


# -- the preview ----------------------------------------------------------------------


def page_lines(client, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    script = parse(response.text).by_id("call-script")
    return [line.text for line in script.find_all("blockquote", class_="line")]


@pytest.mark.parametrize("language", ["en", "es", "pl"])
def test_preview_shows_the_script_of_each_language(signed_in, runtime, language):
    settings = runtime.settings
    expected = call_script(
        runtime.catalog.get("post-call"), language, settings.company_name, settings.callback_number
    )
    response = signed_in.get(f"/dashboard/surveys/post-call/preview/{language}")
    page = parse(response.text)
    scenes = page.find_all("div", class_="scene")
    assert [s.get("data-scene") for s in scenes] == [s.key for s in expected.scenes]
    for scene, want in zip(scenes, expected.scenes, strict=True):
        assert [b.text for b in scene.find_all("blockquote")] == list(want.lines)
        assert {b.get("lang") for b in scene.find_all("blockquote")} <= {language}
    greeting = page.by_id("scene-greeting").find("blockquote").text
    assert greeting.startswith({"en": "Hello, this is Acme Support.", "es": "Hola, le llama Acme Support.",
                                "pl": "Dzień dobry, tu Acme Support."}[language])  # fmt: skip
    assert "8 0 0, 5 5 5, 0 1 0 0" in greeting  # the callback number, as it is spoken
    comment = page.by_id("scene-improve")
    assert "only when nps <= 6" in comment.find("p", class_="note when").text
    others = [a.get("data-language") for a in page.find_all("a", class_="language-link")]
    assert others == [lang for lang in ("en", "es", "pl") if lang != language]


def test_preview_of_a_stored_version_plays_that_version(signed_in, runtime):
    current = runtime.catalog.get("post-call")
    old_prompt = "Old wording: would you recommend us? Press 0 to 10."
    nps = replace(current.questions[0], prompts={**current.questions[0].prompts, "en": old_prompt})
    with runtime.db.session() as session:
        version_for(session, replace(current, questions=(nps, *current.questions[1:])))
    lines = page_lines(signed_in, "/dashboard/surveys/post-call/preview/en?version=1")
    assert old_prompt in lines
    assert old_prompt not in page_lines(signed_in, "/dashboard/surveys/post-call/preview/en")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/dashboard/surveys/post-call/preview/de", 404),
        ("/dashboard/surveys/no-such-survey/preview/en", 404),
        ("/dashboard/surveys/post-call/preview/en?version=9", 404),
        ("/dashboard/surveys/post-call/preview/en?version=x", 400),
    ],
)
def test_preview_of_what_does_not_exist(signed_in, path, status):
    assert signed_in.get(path).status_code == status


# Whole calls through the signed webhooks: digits pressed in turn, a recorded comment,
# or (what was said, the recogniser's confidence).
CALL_PATHS = {
    "promoter": ["9", "4"],
    "detractor with a comment": ["3", "2", "record"],
    "silence throughout": ["", "", "", "", "", ""],
    "invalid keys first": ["A", "7", "9", "5"],
    "opt-out": ["*"],
    # Heard unsure, so confirmed: the first time misheard and asked again.
    "spoken, confirmed": [("10", "0.45"), ("2", None), ("10", "0.45"), ("1", None),
                          ("5", "0.45"), ("1", None)],
}  # fmt: skip


def play(call: SignedCall, keys: list, **start: str) -> list[str]:
    """Play a call with `keys` and return every sentence its TwiML said, in order."""
    reply = call.start(**start)
    for key in keys:
        if isinstance(key, tuple):
            said, confidence = key
            action = reply.root.find("./Gather").get("action")
            extra = {"Confidence": confidence} if confidence else {}
            reply = call.post(action, call.params(SpeechResult=said, **extra))
        else:
            reply = call.record(reply) if key == "record" else call.press(reply, key)
    assert reply.verbs()[-1] == "Hangup", reply.body
    return [text for r in call.replies for text in r.says()]


@pytest.mark.parametrize("language", ["en", "es", "pl"])
def test_preview_and_real_calls_say_exactly_the_same_sentences(
    signed_in, client, make_attempt, language
):
    heard: set[str] = set()
    for index, keys in enumerate(CALL_PATHS.values()):
        attempt = make_attempt(phone=f"+1415555020{index}", language=language)
        call = SignedCall(client, attempt.id, attempt.call_sid, f"+1415555020{index}")
        heard.update(play(call, keys))
    preview = set(page_lines(signed_in, f"/dashboard/surveys/post-call/preview/{language}"))
    assert heard - preview == set(), "said on a call, missing from the preview"
    assert preview - heard == set(), "in the preview, never said on a call"


def test_preview_follows_a_surveys_own_phrases_company_and_voicemail(
    tmp_path, runtime, make_attempt
):
    folder = survey_dir(
        tmp_path,
        **{
            "leave_voicemail = false": 'leave_voicemail = true\ncompany_name = "Globex"\nmax_tries = 2',
            "max_tries = 3\n": "",
            "[dialing]": '[phrases.en]\nthanks = "Cheers from {company}!"\n\n[dialing]',
        },
    )
    custom = replace(runtime, catalog=SurveyCatalog.from_directory(folder))
    app = create_app(runtime=custom)
    with runtime.db.session() as session:
        create_user(session, ADMIN, PASSWORD, "admin")
    client = app.test_client()
    sign_in(client, ADMIN)
    lines = page_lines(client, "/dashboard/surveys/post-call/preview/en")
    assert "Cheers from Globex!" in lines
    assert lines[0].startswith("Hello, this is Globex.")
    page = parse(client.get("/dashboard/surveys/post-call/preview/en").text)
    assert "tries 1 to 1 of 2" in page.by_id("scene-nps-retry-invalid").text
    (voicemail,) = page.by_id("scene-voicemail").find_all("blockquote")

    attempt = make_attempt(phone="+14155550210")
    call = SignedCall(client, attempt.id, attempt.call_sid, "+14155550210")
    assert play(call, [], AnsweredBy="machine_end_beep") == [voicemail.text]
    attempt = make_attempt(phone="+14155550211")
    call = SignedCall(client, attempt.id, attempt.call_sid, "+14155550211")
    heard = play(call, ["9", "4"])
    assert heard[-1] == "Cheers from Globex!"
    assert set(heard) <= set(lines)


# -- test calls: who may, and what is refused -------------------------------------------


@pytest.mark.parametrize("role", ["supervisor", "analyst"])
def test_only_admins_may_place_test_calls(app, runtime, role):
    client = client_for(app, "someone", role, runtime)
    page = parse(client.get("/dashboard/surveys").text)
    assert page.find("a", class_="test-call-link") is None
    assert page.find("form", id="test-call-form") is None
    assert client.get("/dashboard/surveys/post-call/test-call").status_code == 403
    token = csrf_from(client.get("/dashboard/surveys").text)  # the sign-out form's
    response = client.post(
        "/dashboard/surveys/post-call/test-call",
        data={"csrf_token": token, "phone": PHONE, "language": "en"},
    )
    assert response.status_code == 403
    assert client.get("/dashboard/surveys/test-calls/1").status_code == 403
    assert count(runtime, SurveyRequest.id) == 0


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_test_call_form_needs_its_csrf_token(admin_client, runtime, token):
    data = {"phone": PHONE, "language": "en"}
    if token is not None:
        data["csrf_token"] = token
    response = admin_client.post("/dashboard/surveys/post-call/test-call", data=data)
    assert response.status_code == 400
    assert count(runtime, SurveyRequest.id) == 0


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"phone": ""}, "phone", "enter the number to call"),
        ({"phone": "12"}, "phone", "write it with its country code"),
        ({"phone": "call me maybe"}, "phone", "write it with its country code"),
        ({"phone": "+1415555010"}, "phone", "is not a valid phone number"),
        ({"phone": "+1 900 555 0100"}, "phone", "a number a survey cannot call"),
        ({"phone": "+1" + "4" * 80}, "phone", "not a valid phone number"),
        ({"language": "de"}, "language", "the survey speaks en, es, pl, not 'de'"),
        ({"language": ""}, "language", "the survey speaks en, es, pl"),
    ],
)
def test_bad_test_call_input_is_refused_with_a_clear_error(
    admin_client, runtime, form, field, message
):
    response = post_test_call(admin_client, **form)
    assert response.status_code == 400
    error = parse(response.text).by_id("test-call-error")
    assert error.get("data-field") == field
    assert message in error.text
    entered = parse(response.text).find("input", name="phone").get("value")
    assert entered == form.get("phone", PHONE)[:64]
    assert count(runtime, SurveyRequest.id) == 0


def test_a_test_call_for_an_unknown_survey_is_not_found(admin_client):
    assert admin_client.get("/dashboard/surveys/no-such/test-call").status_code == 404


def test_a_number_on_the_do_not_call_list_is_never_test_called(admin_client, runtime):
    with runtime.db.session() as session:
        session.add(OptOut(phone=PHONE, source="keypad"))
    response = post_test_call(admin_client, phone="+1 415-555-0123")
    assert response.status_code == 400
    assert "do-not-call list" in parse(response.text).by_id("test-call-error").text
    assert count(runtime, SurveyRequest.id) == 0


def test_a_number_with_a_survey_under_way_is_refused(admin_client, runtime):
    assert post_test_call(admin_client).status_code == 303
    response = post_test_call(admin_client)
    assert response.status_code == 400
    assert "already scheduled or in progress" in parse(response.text).by_id("test-call-error").text
    assert count(runtime, SurveyRequest.id) == 1


# -- test calls: what is stored and queued ---------------------------------------------


def test_a_test_call_is_a_marked_request_queued_for_now(admin_client, dialing_runtime):
    response = post_test_call(admin_client, phone="+1 (415) 555-0123", language="es")
    assert response.status_code == 303
    location = response.headers["Location"]
    request_id = int(re.fullmatch(r"/dashboard/surveys/test-calls/(\d+)", location).group(1))
    with dialing_runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        assert (request.phone, request.language, request.state) == (
            PHONE,
            "es",
            RequestState.SCHEDULED,
        )
        assert request.due_at == MONDAY  # inside calling hours: at once
        assert request.extra == {"test_call": True, "requested_by": ADMIN}
        assert request.source_call_id.startswith(TEST_CALL_PREFIX)
        assert (request.agent, request.queue, request.team) == (None, None, None)
        assert (
            request.survey_version.content_sha256
            == dialing_runtime.catalog.get("post-call").content_sha256()
        )
    job_id = scheduling.call_job_id(request_id, 1, MONDAY)
    assert Job.exists(job_id, connection=dialing_runtime.redis)

    page = parse(admin_client.get(location).text)
    assert page.by_id("test-call").get("data-state") == "scheduled"
    assert page.by_id("refresh").get("href") == location


def test_an_unanswered_test_call_is_not_retried(admin_client, dialing_runtime):
    from dialer.dispatch import after_attempt

    response = post_test_call(admin_client)
    request_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with dialing_runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        request.state, request.calls_placed = RequestState.NO_ANSWER, 1
        session.add(CallAttempt(request_id=request_id, number=1, status="no-answer",
                                ended_at=MONDAY))  # fmt: skip
    assert after_attempt(dialing_runtime, request_id) == (
        "final: no_answer (a test call is not retried)"
    )
    with dialing_runtime.db.session() as session:
        assert session.get(SurveyRequest, request_id).state is RequestState.NO_ANSWER


def test_a_test_call_skips_sampling_and_fatigue(tmp_path, dialing_runtime, admin):
    folder = survey_dir(tmp_path, **{"sample_percent = 100": "sample_percent = 0"})
    runtime = replace(dialing_runtime, catalog=SurveyCatalog.from_directory(folder))
    with runtime.db.session() as session:
        # Surveyed yesterday: inside the 30 days of fatigue.
        request = SurveyRequest(
            phone=PHONE, source_call_id="crm-1", language="en", survey_name="post-call",
            call_ended_at=MONDAY - timedelta(days=1), state=RequestState.COMPLETED,
        )  # fmt: skip
        session.add(request)
        session.flush()
        session.add(CallAttempt(request_id=request.id, number=1, status="completed",
                                created_at=MONDAY - timedelta(days=1)))  # fmt: skip
    client = create_app(runtime=runtime).test_client()
    sign_in(client, ADMIN)
    assert post_test_call(client).status_code == 303


def test_outside_calling_hours_the_test_call_waits_and_says_so(admin_client, dialing_runtime):
    # 18:05 UTC is 03:05 in Tokyo: the call is due at 09:00 Tokyo, 00:00 UTC.
    response = post_test_call(admin_client, phone="+81 3 1234 5678")
    assert response.status_code == 303
    page = parse(admin_client.get(response.headers["Location"]).text)
    due = page.by_id("test-call-due").text
    assert due.startswith("2026-11-24 00:00 UTC")
    assert "calling hours" in due


def test_a_customers_request_is_not_a_test_call(admin_client, runtime, make_attempt):
    attempt = make_attempt()
    assert (
        admin_client.get(f"/dashboard/surveys/test-calls/{attempt.request_id}").status_code == 404
    )


# -- a test call, the whole way -----------------------------------------------------------


@pytest.mark.e2e
def test_a_test_call_rings_through_the_dialer_and_phonesim(campaign):  # noqa: F811
    runtime = campaign.runtime
    network = campaign.network
    with runtime.db.session() as session:
        create_user(session, ADMIN, PASSWORD, "admin")
    app = create_app(runtime=runtime)
    client = app.test_client()
    sign_in(client, ADMIN)
    network.set_persona(
        PHONE,
        Persona.answering(["4", "3", Comment("The wait was long", seconds=5, finish_key="#")]),
    )

    response = post_test_call(client, language="es")
    assert response.status_code == 303
    status_url = response.headers["Location"]
    assert parse(client.get(status_url).text).by_id("test-call").get("data-state") == "scheduled"

    use_worker_runtime(runtime)
    try:
        worker = SimpleWorker([runtime.queue(CALL_QUEUE)], connection=runtime.redis)
        scheduling.release_due_jobs(runtime.queue(CALL_QUEUE), network.clock.now())
        worker.work(burst=True)
        network.run_until_idle(timeout=30)
        worker.work(burst=True)
    finally:
        use_worker_runtime(None)

    page = parse(client.get(status_url).text)
    assert page.by_id("test-call").get("data-state") == "completed"
    assert [
        tr.get("data-status") for tr in page.by_id("attempts").find("tbody").find_all("tr")
    ] == ["completed"]
    answered = {tr.get("data-question"): tr.text for tr in page.by_id("answers").find_all("tr")}
    assert set(answered) == {"nps", "csat", "improve"}
    assert "The wait was long" in answered["improve"]

    (call,) = network.calls_to(PHONE)
    preview = page_lines(client, "/dashboard/surveys/post-call/preview/es")
    assert call.heard and set(call.heard) <= set(preview)
    assert call.heard[0] == preview[0]  # the Spanish greeting
    versions = parse(client.get("/dashboard/surveys").text).by_id("survey-post-call")
    (row,) = versions.find_all("tr", **{"data-current": "yes"})
    assert (row.get("data-requests"), row.get("data-test-calls")) == ("1", "1")
