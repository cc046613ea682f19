"""Whole survey calls through the Flask test client with correctly signed webhooks."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.models import Answer, CallAttempt, OptOut, RequestState, SurveyRequest, SurveyVersion
from scoring.report import ReportQuery, report
from tests.conftest import PUBLIC_BASE_URL
from tests.ivr.conftest import without_ref


def stored(runtime, attempt_id):
    with runtime.db.session() as session:
        attempt = session.get(CallAttempt, attempt_id)
        request = attempt.request
        answers = {a.question_key: a for a in request.answers}
        attempt.events  # noqa: B018 - load the history before the session closes
        return request, attempt, answers


def test_greeting_names_company_then_opt_out_then_first_question(call):
    c = call()
    reply = c.start()
    gather = reply.root.find("./Gather")
    assert gather.get("input") == "dtmf speech"  # keys or a spoken answer (core.utterance)
    assert gather.get("numDigits") == "1"
    assert gather.get("actionOnEmptyResult") == "true"
    assert without_ref(gather.get("action")) == f"{c.base}/questions/nps?try=1"
    # A Redirect to the same action follows, for when Twilio falls through the Gather.
    assert reply.root.find("./Redirect").text == gather.get("action")
    greeting, question = [say.text for say in gather.findall("./Say")]
    # The company comes first, and the opt-out key right after it.
    assert greeting.startswith("Hello, this is Acme Support. To stop these calls, press star")
    assert "8 0 0, 5 5 5, 0 1 0 0" in greeting  # the callback number, spoken
    assert "recommend" in question
    assert gather.find("./Say").get("language") == "en-US"


def test_promoter_completes_without_comment(call, runtime):
    c = call()
    reply = c.press(c.start(), "9")
    assert (
        without_ref(reply.root.find("./Gather").get("action")) == f"{c.base}/questions/csat?try=1"
    )
    reply = c.press(reply, "4")
    assert reply.verbs() == ["Say", "Hangup"]
    assert reply.says() == ["Thank you for your feedback. Goodbye."]

    request, _, answers = stored(runtime, c.attempt_id)
    assert request.state is RequestState.COMPLETED
    assert {k: a.value for k, a in answers.items()} == {"nps": 9, "csat": 4}
    assert answers["nps"].keys == "9"
    assert answers["nps"].survey_version_id == request.survey_version_id is not None
    assert answers["nps"].attempt_id == c.attempt_id
    # Each answer carries the request's report fields, for one-table report queries.
    nps = answers["nps"]
    assert (nps.agent, nps.queue, nps.team, nps.survey_name, nps.language) == (
        request.agent, request.queue, request.team, request.survey_name, request.language,
    )  # fmt: skip
    assert nps.call_ended_at == request.call_ended_at


def test_detractor_is_asked_for_a_recorded_comment(call, runtime):
    c = call()
    reply = c.press(c.press(c.start(), "3"), "2")
    record = reply.root.find("./Record")
    assert record is not None
    assert record.get("transcribe") == "true"
    assert record.get("transcribeCallback") == f"{c.base}/questions/improve/transcription"
    assert record.get("maxLength") == "60"
    assert reply.root.find("./Redirect").text == record.get("action")
    assert "improve" in reply.says()[0]

    reply = c.record(reply, seconds=7)
    assert reply.verbs() == ["Say", "Hangup"]
    c.post(
        f"{c.base}/questions/improve/transcription",
        c.params(
            TranscriptionText="The hold music was awful",
            TranscriptionStatus="completed",
            RecordingSid="RE" + "1" * 32,
        ),
    )
    request, _, answers = stored(runtime, c.attempt_id)
    assert request.state is RequestState.COMPLETED
    comment = answers["improve"]
    assert comment.value is None
    assert comment.recording_url.endswith("/Recordings/RE1")
    assert comment.recording_seconds == 7
    assert comment.transcript == "The hold music was awful"
    assert comment.transcript_status == "completed"


def test_empty_comment_moves_on_and_completes(call, runtime):
    c = call()
    reply = c.press(c.press(c.start(), "0"), "1")
    reply = c.fall_through(reply)  # no audio: Twilio skips the action, runs the Redirect
    assert reply.verbs() == ["Say", "Hangup"]
    request, _, answers = stored(runtime, c.attempt_id)
    assert request.state is RequestState.COMPLETED
    assert set(answers) == {"nps", "csat"}


@pytest.mark.parametrize(
    ("second", "value"),
    [("0", 10), ("", 1), ("#", 1)],
    ids=["1-then-0-is-10", "1-then-silence-is-1", "1-then-pound-is-1"],
)
def test_nps_leading_one_waits_briefly_for_a_zero(call, runtime, second, value):
    c = call()
    reply = c.press(c.start(), "1")
    gather = reply.root.find("./Gather")
    assert without_ref(gather.get("action")) == f"{c.base}/questions/nps?try=1&stage=after-one"
    assert gather.get("timeout") == "2"
    assert gather.findall("./Say") == []  # nothing is said while listening for the "0"
    c.press(reply, second)
    _, _, answers = stored(runtime, c.attempt_id)
    assert answers["nps"].value == value


@pytest.mark.parametrize("digits", ["0", "2", "5", "9"])
def test_nps_keys_other_than_one_are_final_at_once(call, digits):
    c = call()
    reply = c.press(c.start(), digits)
    assert without_ref(reply.root.find("./Gather").get("action")).endswith("/questions/csat?try=1")


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("1", "1", "not a valid answer"),  # 11
        ("", None, "did not get an answer"),
        ("#", None, "did not get an answer"),
    ],
)
def test_invalid_or_missing_input_is_explained_and_asked_again(
    call, runtime, first, second, reason
):
    c = call()
    reply = c.press(c.start(), first)
    if second is not None:
        reply = c.press(reply, second)
    gather = reply.root.find("./Gather")
    assert without_ref(gather.get("action")) == f"{c.base}/questions/nps?try=2"
    says = [s.text for s in gather.findall("./Say")]
    assert reason in says[0]
    assert says[1] == (
        "Please press or say a number from 0 to 10. For 10, press 1 then 0, or say ten."
    )
    reply = c.press(reply, "8")
    assert without_ref(reply.root.find("./Gather").get("action")).endswith("/questions/csat?try=1")
    _, _, answers = stored(runtime, c.attempt_id)
    assert answers["nps"].value == 8


def test_csat_out_of_range_is_asked_again(call):
    c = call()
    reply = c.press(c.press(c.start(), "9"), "7")
    gather = reply.root.find("./Gather")
    assert without_ref(gather.get("action")).endswith("/questions/csat?try=2")
    assert [s.text for s in gather.findall("./Say")][
        -1
    ] == "Please press or say a number from 1 to 5."


def test_after_the_last_try_the_question_is_skipped(call, runtime):
    c = call()
    reply = c.start()
    for _ in range(3):  # max_tries = 3 in the shipped survey
        reply = c.press(reply, "")
    gather = reply.root.find("./Gather")
    assert without_ref(gather.get("action")).endswith("/questions/csat?try=1")
    assert gather.find("./Say").text == "Let's move on."
    reply = c.press(reply, "5")
    assert reply.verbs() == ["Say", "Hangup"]  # no NPS, so no detractor comment
    request, _, answers = stored(runtime, c.attempt_id)
    assert set(answers) == {"csat"}
    assert request.state is RequestState.COMPLETED


def test_silent_caller_is_abandoned_not_completed(call, runtime):
    c = call()
    reply = c.start()
    for _ in range(6):
        reply = c.press(reply, "")
    assert reply.verbs() == ["Say", "Say", "Hangup"]
    request, _, answers = stored(runtime, c.attempt_id)
    assert answers == {}
    assert request.state is RequestState.ABANDONED


@pytest.mark.parametrize("at_question", [0, 1])
def test_star_opts_out_at_any_question(call, runtime, at_question):
    c = call()
    reply = c.start()
    if at_question == 1:
        reply = c.press(reply, "9")
    reply = c.press(reply, "*")
    assert reply.verbs() == ["Say", "Hangup"]
    assert "will not receive survey calls from Acme Support" in reply.says()[0]
    request, _, _ = stored(runtime, c.attempt_id)
    assert request.state is RequestState.OPTED_OUT
    with runtime.db.session() as session:
        opt_out = session.scalars(select(OptOut)).one()
        assert (opt_out.phone, opt_out.source, opt_out.request_id) == (c.to, "keypad", request.id)


def test_star_during_a_recorded_comment_opts_out(call, runtime):
    c = call()
    reply = c.press(c.press(c.start(), "2"), "1")
    reply = c.record(reply, digits="*")
    assert "will not receive" in reply.says()[0]
    request, _, answers = stored(runtime, c.attempt_id)
    assert request.state is RequestState.OPTED_OUT
    assert "improve" not in answers


def test_hang_up_mid_survey_keeps_answers_and_marks_partial(call, runtime):
    c = call()
    c.status("initiated", 0)
    c.press(c.start(), "7")
    c.status("completed", 3, CallDuration="25")
    request, attempt, answers = stored(runtime, c.attempt_id)
    assert request.state is RequestState.PARTIAL
    assert answers["nps"].value == 7
    assert attempt.status == "completed"
    assert attempt.duration_seconds == 25


def test_hang_up_during_greeting_is_abandoned(call, runtime):
    c = call()
    c.start()
    c.status("completed", 2, CallDuration="4")
    request, _, _ = stored(runtime, c.attempt_id)
    assert request.state is RequestState.ABANDONED


def test_every_webhook_redelivered_returns_the_same_twiml_and_writes_nothing_new(call, runtime):
    c = call()
    first = c.start()
    assert c.start().body == first.body
    after_nps = c.press(first, "4")
    after_csat = c.press(after_nps, "2")
    # Twilio redelivers the NPS answer after the CSAT one was stored.
    assert c.press(first, "4").body == after_nps.body
    assert c.press(after_nps, "2").body == after_csat.body
    done = c.record(after_csat)
    assert c.record(after_csat).body == done.body
    for _ in range(2):
        c.status("completed", 4, CallDuration="40")
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(Answer.id))) == 3
        assert session.scalar(select(func.count(SurveyVersion.id))) == 1
    request, attempt, _ = stored(runtime, c.attempt_id)
    assert request.state is RequestState.COMPLETED
    assert len(attempt.events) == 1


def test_redelivered_opt_out_is_idempotent(call, runtime):
    c = call()
    reply = c.start()
    first = c.press(reply, "*")
    assert c.press(reply, "*").body == first.body
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(OptOut.id))) == 1


def test_answering_machine_hears_no_survey(call, runtime):
    c = call()
    reply = c.start(AnsweredBy="machine_end_beep")
    assert reply.verbs() == ["Hangup"]
    c.status("completed", 3, CallDuration="12", AnsweredBy="machine_end_beep")
    request, attempt, answers = stored(runtime, c.attempt_id)
    assert request.state is RequestState.VOICEMAIL
    assert attempt.answered_by == "machine_end_beep"
    assert answers == {}


def test_voicemail_message_names_company_and_opt_out_number(call, runtime, client):
    c = call()
    reply = c.post(f"{c.base}/voicemail", c.params())
    assert reply.verbs() == ["Say", "Hangup"]
    message = reply.says()[0]
    assert "Acme Support" in message
    assert "To stop these calls, call 8 0 0, 5 5 5, 0 1 0 0" in message


@pytest.mark.parametrize("answered_by", ["human", "unknown"])
def test_people_and_undecided_detection_get_the_survey(call, answered_by):
    c = call()
    assert c.start(AnsweredBy=answered_by).root.find("./Gather") is not None


@pytest.mark.parametrize(
    ("language", "tag", "voice", "fragment"),
    [
        ("es", "es-US", "Polly.Lupe", "le llama Acme Support"),
        ("es-MX", "es-US", "Polly.Lupe", "le llama Acme Support"),
        ("pl", "pl-PL", "Polly.Ewa", "tu Acme Support"),
        ("de", "en-US", "Polly.Joanna", "this is Acme Support"),
    ],
)
def test_prompts_in_the_callers_language(call, language, tag, voice, fragment):
    c = call(language=language)
    say = c.start().root.find("./Gather/Say")
    assert (say.get("language"), say.get("voice")) == (tag, voice)
    assert fragment in say.text


def test_status_callbacks_build_the_attempt_history(call, runtime):
    c = call()
    c.status("initiated", 0, Timestamp="Mon, 23 Nov 2026 10:05:00 +0000")
    c.status("ringing", 1, Timestamp="Mon, 23 Nov 2026 10:05:01 +0000")
    c.status("in-progress", 2, Timestamp="Mon, 23 Nov 2026 10:05:07 +0000")
    c.status(
        "completed", 3, CallDuration="63", SipResponseCode="200",
        Timestamp="Mon, 23 Nov 2026 10:06:10 +0000",
    )  # fmt: skip
    _, attempt, _ = stored(runtime, c.attempt_id)
    assert [e.status for e in attempt.events] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [e.sequence_number for e in attempt.events] == [0, 1, 2, 3]
    assert attempt.status == "completed"
    assert attempt.started_at.isoformat() == "2026-11-23T10:05:00+00:00"
    assert attempt.answered_at.isoformat() == "2026-11-23T10:05:07+00:00"
    assert attempt.ended_at.isoformat() == "2026-11-23T10:06:10+00:00"
    assert (attempt.duration_seconds, attempt.sip_response_code) == (63, 200)


def test_out_of_order_callbacks_never_move_an_attempt_backwards(call, runtime):
    c = call()
    c.status("no-answer", 2, SipResponseCode="487", CallDuration="0")
    c.status("ringing", 1)
    c.status("initiated", 0)
    request, attempt, _ = stored(runtime, c.attempt_id)
    assert attempt.status == "no-answer"
    assert attempt.sip_response_code == 487
    assert request.state is RequestState.NO_ANSWER


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("busy", RequestState.BUSY),
        ("no-answer", RequestState.NO_ANSWER),
        ("failed", RequestState.FAILED),
        ("canceled", RequestState.CANCELED),
    ],
)
def test_unanswered_outcomes(call, runtime, status, state):
    c = call()
    c.status(status, 1)
    request, attempt, _ = stored(runtime, c.attempt_id)
    assert (attempt.status, request.state) == (status, state)


def test_survey_version_is_pinned_when_the_call_starts(call, runtime):
    c = call()
    c.start()
    request, _, _ = stored(runtime, c.attempt_id)
    with runtime.db.session() as session:
        version = session.get(SurveyVersion, request.survey_version_id)
        assert (version.survey_name, version.version) == ("post-call", 1)
        assert version.definition["questions"][0]["key"] == "nps"


def test_no_answers_in_other_requests_are_touched(call, runtime):
    first, second = call(phone="+14155550101"), call(phone="+14155550102")
    first.press(first.start(), "9")
    second.press(second.start(), "3")
    with runtime.db.session() as session:
        values = dict(
            session.execute(select(SurveyRequest.phone, Answer.value).join(Answer.request)).all()
        )
    assert values == {"+14155550101": 9, "+14155550102": 3}


def test_public_url_not_the_internal_one_is_what_is_signed(call):
    c = call()
    assert c.base.startswith(PUBLIC_BASE_URL)
    assert c.start().status == 200


CES_YESNO_SURVEY = """
name = "effort"
default_language = "en"
max_tries = 2

[[questions]]
key = "effort"
kind = "ces"
prompt.en = "How easy was it to get your issue solved? Press 1 for very difficult, up to 7 for very easy."

[[questions]]
key = "resolved"
kind = "yesno"
prompt.en = "Was your issue resolved? Press 1 for yes, 2 for no."

[[questions]]
key = "callback"
kind = "yesno"
when = "resolved == 2"
prompt.en = "Would you like us to call you back? Press 1 for yes, 2 for no."

[phrases.en]
greeting = "Hi from {company}! Press star to stop these calls. A two-question survey follows."
thanks = "Thanks, bye."
"""


@pytest.fixture
def effort_survey(runtime, tmp_path):
    from core.survey import SurveyCatalog

    (tmp_path / "effort.toml").write_text(CES_YESNO_SURVEY)
    runtime.catalog = SurveyCatalog.from_directory(tmp_path)


@pytest.mark.usefixtures("effort_survey")
def test_ces_and_yes_no_questions_with_a_condition_and_phrase_overrides(call, runtime):
    c = call(survey="effort")
    reply = c.start()
    greeting = reply.root.find("./Gather/Say").text
    assert (
        greeting
        == "Hi from Acme Support! Press star to stop these calls. A two-question survey follows."
    )
    reply = c.press(reply, "8")  # CES is 1-7
    assert without_ref(reply.root.find("./Gather").get("action")).endswith(
        "/questions/effort?try=2"
    )
    assert (
        reply.root.findall("./Gather/Say")[-1].text == "Please press or say a number from 1 to 7."
    )
    reply = c.press(reply, "7")
    reply = c.press(reply, "3")  # yes/no is 1 or 2
    assert reply.root.findall("./Gather/Say")[-1].text == "Press 1 or say yes; press 2 or say no."
    reply = c.press(reply, "2")
    assert without_ref(reply.root.find("./Gather").get("action")).endswith(
        "/questions/callback?try=1"
    )
    reply = c.press(reply, "1")
    assert reply.says() == ["Thanks, bye."]
    request, _, answers = stored(runtime, c.attempt_id)
    assert {k: a.value for k, a in answers.items()} == {"effort": 7, "resolved": 2, "callback": 1}
    assert request.state is RequestState.COMPLETED


@pytest.mark.usefixtures("effort_survey")
def test_condition_false_skips_the_question(call, runtime):
    c = call(survey="effort")
    reply = c.press(c.press(c.start(), "5"), "1")
    assert reply.says() == ["Thanks, bye."]


def test_request_for_a_survey_removed_from_the_catalog_gets_a_goodbye(call, runtime):
    from core.survey import SurveyCatalog

    c = call(survey="retired")
    runtime.catalog = SurveyCatalog({})
    reply = c.start()
    assert reply.verbs() == ["Say", "Hangup"]
    assert "not available" in reply.says()[0]


def test_a_key_pressed_as_the_caller_hung_up_ends_the_request_partial_not_abandoned(call, runtime):
    """Twilio posts the Gather's action and the final status callback at once; when the
    status callback is taken first it marks the request abandoned (nothing answered yet).
    The answer that follows is stored, and the request counts as answered."""
    c = call()
    c.status("initiated", 0)
    first = c.start()
    c.status("completed", 3, CallDuration="12")
    assert stored(runtime, c.attempt_id)[0].state is RequestState.ABANDONED
    c.press(first, "3")
    request, _, answers = stored(runtime, c.attempt_id)
    assert answers["nps"].value == 3
    assert request.state is RequestState.PARTIAL
    with runtime.db.session() as session:
        (everything,) = report(session, ReportQuery())
    assert (everything.reached, everything.partial, everything.completed) == (1, 1, 0)
    assert (everything.nps_responses, everything.detractors) == (1, 1)


def test_a_redelivered_answer_does_not_reopen_an_abandoned_request(call, runtime):
    c = call()
    first = c.start()
    c.press(first, "9")
    c.status("completed", 2, CallDuration="12")
    assert stored(runtime, c.attempt_id)[0].state is RequestState.PARTIAL
    with runtime.db.session() as session:
        session.get(
            SurveyRequest, stored(runtime, c.attempt_id)[0].id
        ).state = RequestState.ABANDONED
    c.press(first, "9")  # the same answer again: nothing stored, nothing moved
    assert stored(runtime, c.attempt_id)[0].state is RequestState.ABANDONED
