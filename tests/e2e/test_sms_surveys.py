"""Surveys by text end to end: intake -> the dialer's job on a real Redis -> an rq worker
-> the twilio SDK's Messages API -> phonesim -> status callbacks and the customer's
texts, signed, to /sms/inbound -> the next question, paced, on the messages queue.

Customers text by `network.text_in()`, as a handset would; time is the simulated clock
shared by the dialer, the conversation's expiry and the phone network.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from aftercall.demo import LateBoundApp
from aftercall.web import create_app
from aftercall.wiring import PROCESS_WIRING
from core.models import (
    Answer,
    CallAttempt,
    Channel,
    OptOut,
    RequestState,
    SmsConversation,
    SmsMessage,
    SurveyRequest,
)
from core.runtime import Runtime, use_worker_runtime
from core.survey import SurveyCatalog
from dialer import scheduling
from dialer.intake import CallEnded, accept_calls
from dialer.scheduling import CALL_QUEUE
from phonesim import BackgroundServer, Persona, PhoneNetwork, SimClock, TextPersona
from sms import conversation, sender
from sms.jobs import resend_pending
from sms.outbox import MESSAGE_QUEUE
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

pytestmark = pytest.mark.e2e

SURVEYS = Path(__file__).resolve().parents[2] / "core" / "surveys"

BY_TEXT = """
name = "by-text"
title = "After your support call"
company_name = "Acme"
channel = "sms"

[[questions]]
key = "nps"
kind = "nps"
prompt.en = "On a scale from 0 to 10, how likely are you to recommend us? Press a number."
prompt.es = "Del 0 al 10, ¿nos recomendaría? Marque un número."

[[questions]]
key = "csat"
kind = "csat"
prompt.en = "How satisfied were you with the help you received today? Press 1 to 5."
prompt.es = "¿Qué tan satisfecho quedó con la ayuda? Marque del 1 al 5."

[[questions]]
key = "improve"
kind = "comment"
when = "nps <= 6"
prompt.en = "What should we improve? Tell us after the tone."
prompt.es = "¿Qué deberíamos mejorar? Díganos después del tono."

[dialing]
fatigue_days = 0  # lets a test open two surveys for one number

[sms]
expire_hours = 24
"""

FALLBACK = """
name = "fallback"
company_name = "Acme"

[[questions]]
key = "nps"
kind = "nps"
prompt.en = "On a scale from 0 to 10, how likely are you to recommend us? Press a number."

[dialing]
max_attempts = 2
retry_minutes = [30]

[sms]
fallback = true
"""


class Texting:
    """The campaign driven as the Procfile's worker and cron drive it."""

    def __init__(self, runtime: Runtime, network: PhoneNetwork) -> None:
        self.runtime = runtime
        self.network = network
        self.calls = runtime.queue(CALL_QUEUE)
        self.messages = runtime.queue(MESSAGE_QUEUE)
        self.worker = SimpleWorker([self.calls, self.messages], connection=runtime.redis)
        self.counter = 0

    def now(self) -> datetime:
        return self.network.clock.now()

    def intake(self, phone: str, survey: str = "by-text", **fields):
        self.counter += 1
        call = CallEnded(
            phone=phone,
            source_call_id=fields.pop("source_call_id", f"crm-{self.counter}"),
            ended_at=fields.pop("ended_at", self.now() - timedelta(minutes=10)),
            agent="alice",
            survey=survey,
            **fields,
        )
        (result,) = accept_calls(self.runtime, [call])
        return result

    def work(self) -> None:
        """Due jobs run, the network delivers, the webhooks' texts go out, until quiet."""
        for _ in range(10):
            scheduling.release_due_jobs(self.calls, self.now())
            scheduling.release_due_jobs(self.messages, self.now())
            self.worker.work(burst=True)
            self.network.run_until_idle(timeout=30)
            if not self.calls.count and not self.messages.count:
                return
        raise AssertionError("the campaign did not settle")

    def run_to_completion(self, limit: int = 20) -> None:
        self.work()
        for _ in range(limit):
            due = [
                t
                for t in (
                    scheduling.next_scheduled_time(self.calls),
                    scheduling.next_scheduled_time(self.messages),
                )
                if t is not None
            ]
            if not due:
                return
            self.network.clock.set(max(min(due), self.now()))
            self.work()
        raise AssertionError("campaign did not finish")

    def text(self, phone: str, body: str) -> None:
        """The customer texts the survey number."""
        self.network.text_in(phone, FROM_NUMBER, body)
        self.work()

    def received(self, phone: str) -> list[str]:
        """What the customer's handset got, in order."""
        return [m.body for m in self.network.messages_to(phone)]

    def request(self, request_id: int) -> SurveyRequest:
        with self.runtime.db.session() as session:
            request = session.get(SurveyRequest, request_id)
            request.answers, request.attempts  # noqa: B018 - load before the session ends
            return request

    def answers(self, request_id: int) -> dict[str, Answer]:
        with self.runtime.db.session() as session:
            rows = session.scalars(select(Answer).where(Answer.request_id == request_id))
            return {answer.question_key: answer for answer in rows}

    def texts(self, **where) -> list[SmsMessage]:
        with self.runtime.db.session() as session:
            query = select(SmsMessage).order_by(SmsMessage.id)
            for name, value in where.items():
                query = query.where(getattr(SmsMessage, name) == value)
            return list(session.scalars(query))


@pytest.fixture
def texting(runtime: Runtime, redis_url: str, tmp_path: Path) -> Iterator[Texting]:
    surveys = tmp_path / "surveys"
    surveys.mkdir()
    shutil.copy(SURVEYS / "post-call.toml", surveys)
    (surveys / "by-text.toml").write_text(BY_TEXT)
    (surveys / "fallback.toml").write_text(FALLBACK)
    # Monday 18:05 UTC: 10:05 in California, inside every test number's hours.
    clock = SimClock(datetime(2026, 11, 23, 18, 5, tzinfo=UTC))
    network = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=clock, seed=7)
    network.start()
    late_app = LateBoundApp()
    server = BackgroundServer(late_app).start()
    network.configure_number(FROM_NUMBER, sms_url=f"{server.base_url}/sms/inbound")
    settings = runtime.settings.with_overrides(
        public_base_url=server.base_url,
        twilio_api_base=network.api_base,
        redis_url=redis_url,
        calls_per_second=100.0,
        messages_per_second=100.0,
        surveys_dir=surveys,
    )
    live = Runtime(
        wiring=PROCESS_WIRING,
        settings=settings,
        db=runtime.db,
        catalog=SurveyCatalog.from_directory(surveys),
        now=clock.now,
    )
    live.redis.flushdb()
    late_app.app = create_app(runtime=live)
    use_worker_runtime(live)
    try:
        yield Texting(live, network)
    finally:
        use_worker_runtime(None)
        server.stop()
        network.stop()


def test_a_survey_by_text_asks_one_question_per_text_and_completes(texting):
    phone = "+14155550701"
    result = texting.intake(phone, ended_at=texting.now() - timedelta(minutes=10))
    assert result.accepted and result.channel is Channel.SMS
    texting.run_to_completion()
    (first,) = texting.received(phone)
    assert first.startswith("Acme: a short survey about your support call. Reply STOP")
    assert first.endswith(
        "On a scale from 0 to 10, how likely are you to recommend us? "
        "Reply with a number from 0 to 10."
    )
    assert texting.request(result.request_id).state is RequestState.TEXTING

    texting.text(phone, "9/10")
    assert texting.request(result.request_id).state is RequestState.IN_PROGRESS
    assert texting.received(phone)[-1] == (
        "How satisfied were you with the help you received today? "
        "Reply with a number from 1 (very dissatisfied) to 5 (very satisfied)."
    )
    texting.text(phone, "five!")
    assert texting.received(phone)[-1] == "Thank you for your feedback!"
    request = texting.request(result.request_id)
    assert request.state is RequestState.COMPLETED
    assert request.channel is Channel.SMS
    assert request.attempts == []  # nobody was called
    answers = texting.answers(result.request_id)
    assert {key: a.value for key, a in answers.items()} == {"nps": 9, "csat": 5}
    assert {a.input for a in answers.values()} == {"text"}
    assert {a.channel for a in answers.values()} == {"sms"}
    assert answers["nps"].transcript == "9/10"
    assert all(a.attempt_id is None and a.conversation_id for a in answers.values())
    # Every text aftercall sent was delivered, as Twilio's status callbacks said.
    sent = texting.texts(direction="outbound")
    assert [t.purpose for t in sent] == ["question", "question", "thanks"]
    assert {t.status for t in sent} == {"delivered"}
    assert all(t.message_sid and t.message_sid.startswith("SM") for t in sent)


@pytest.mark.parametrize("reply", ["9", "nine", "10!", "9 out of 10", "I'd say 8"])
def test_replies_are_read_like_a_key_press(texting, reply):
    phone = "+14155550702"
    result = texting.intake(phone)
    texting.run_to_completion()
    texting.text(phone, reply)
    (nps,) = [a for a in texting.answers(result.request_id).values() if a.question_key == "nps"]
    expected = {"9": 9, "nine": 9, "10!": 10, "9 out of 10": 9, "I'd say 8": 8}[reply]
    assert nps.value == expected


def test_a_wrong_reply_gets_one_reask_then_the_survey_moves_on(texting):
    phone = "+14155550703"
    result = texting.intake(phone)
    texting.run_to_completion()
    texting.text(phone, "banana")
    assert texting.received(phone)[-1].startswith("Sorry, we did not understand that. On a scale")
    texting.text(phone, "\U0001f44d")  # a thumbs-up is no score either: moved on
    assert texting.received(phone)[-1].startswith("How satisfied were you")
    texting.text(phone, "4")
    request = texting.request(result.request_id)
    assert request.state is RequestState.COMPLETED
    assert {a.question_key: a.value for a in request.answers} == {"csat": 4}
    inbound = texting.texts(direction="inbound")
    assert [t.purpose for t in inbound] == ["not_understood", "not_understood", "answer"]
    assert [t.body for t in inbound] == ["banana", "\U0001f44d", "4"]


def test_a_detractor_is_asked_for_a_comment_and_the_alert_hears_of_it(texting):
    phone = "+14155550704"
    result = texting.intake(phone)
    texting.run_to_completion()
    texting.text(phone, "3")
    texting.text(phone, "2")
    assert texting.received(phone)[-1] == (
        "What should we improve? Reply with a few words, or SKIP."
    )
    texting.text(phone, "The agent never called me back 😡")
    answers = texting.answers(result.request_id)
    assert answers["improve"].value is None
    assert answers["improve"].transcript == "The agent never called me back 😡"
    assert texting.request(result.request_id).state is RequestState.COMPLETED


def test_spanish_customers_get_spanish_texts_and_may_reply_in_words(texting):
    phone = "+14155550705"
    result = texting.intake(phone, language="es-MX")
    texting.run_to_completion()
    assert texting.received(phone)[0].endswith(
        "Del 0 al 10, ¿nos recomendaría? Responda con un número del 0 al 10."
    )
    texting.text(phone, "nueve")
    texting.text(phone, "cinco")
    assert texting.received(phone)[-1] == "¡Gracias por su opinión!"
    answers = texting.answers(result.request_id)
    assert (answers["nps"].value, answers["csat"].value) == (9, 5)


def test_stop_opts_the_number_out_of_calls_and_texts_alike(texting):
    phone = "+14155550706"
    result = texting.intake(phone)
    texting.run_to_completion()
    texting.text(phone, "STOP")
    # Twilio's own handling answered STOP (and blocks our number); we record, not reply.
    assert texting.received(phone)[-1].startswith("You have successfully been unsubscribed")
    assert len(texting.texts(direction="outbound")) == 1
    assert texting.request(result.request_id).state is RequestState.OPTED_OUT
    with texting.runtime.db.session() as session:
        opt_out = session.scalar(select(OptOut).where(OptOut.phone == phone))
        assert (opt_out.source, opt_out.request_id) == ("sms", result.request_id)
    # Neither a call nor a text for the next support call.
    again = texting.intake(phone, survey="post-call")
    assert again.reason == "opted_out"
    assert texting.intake(phone).reason == "opted_out"


def test_a_local_language_stop_word_is_honoured_and_confirmed_by_us(texting):
    phone = "+14155550707"
    result = texting.intake(phone, language="es")
    texting.run_to_completion()
    texting.text(phone, "¡Baja!")  # Twilio's default handling knows English words only
    assert texting.request(result.request_id).state is RequestState.OPTED_OUT
    assert texting.received(phone)[-1] == (
        "No recibirá más llamadas ni mensajes de encuesta de Acme."
    )
    assert not texting.network.opted_out(FROM_NUMBER, phone)


def test_start_resubscribes_a_number_that_stopped_by_text(texting):
    phone = "+14155550708"
    texting.intake(phone)
    texting.run_to_completion()
    texting.text(phone, "STOP")
    texting.text(phone, "START")
    with texting.runtime.db.session() as session:
        assert session.scalar(select(OptOut).where(OptOut.phone == phone)) is None
    inbound = texting.texts(direction="inbound")
    assert [t.purpose for t in inbound] == ["opt_out", "opt_in"]


def test_help_is_answered_by_twilio_and_the_survey_goes_on(texting):
    phone = "+14155550709"
    result = texting.intake(phone)
    texting.run_to_completion()
    texting.text(phone, "HELP")
    assert texting.received(phone)[-1].startswith("Reply STOP to unsubscribe")  # Twilio's
    texting.text(phone, "7")
    assert texting.answers(result.request_id)["nps"].value == 7


def test_no_reply_expires_and_a_late_reply_is_told_once_the_survey_closed(texting):
    phone = "+14155550710"
    result = texting.intake(phone)
    texting.run_to_completion()
    texting.network.clock.set(texting.now() + timedelta(hours=25))
    assert conversation.expire(texting.runtime) == 1
    assert texting.request(result.request_id).state is RequestState.NO_REPLY
    texting.text(phone, "9")
    texting.text(phone, "hello?")
    assert texting.received(phone)[1:] == ["This survey has closed. Thank you for your time."]
    assert texting.answers(result.request_id) == {}
    assert [t.purpose for t in texting.texts(direction="inbound")] == ["expired", "expired"]


def test_a_survey_abandoned_half_way_expires_as_partial(texting):
    phone = "+14155550711"
    result = texting.intake(phone)
    texting.run_to_completion()
    texting.text(phone, "10")
    texting.network.clock.set(texting.now() + timedelta(hours=25))
    conversation.expire(texting.runtime)
    assert texting.request(result.request_id).state is RequestState.PARTIAL


def test_an_undelivered_question_ends_the_survey_and_is_counted(texting):
    phone = "+14155550712"
    texting.network.set_message_fate(phone, "undelivered", 30006)  # a landline
    result = texting.intake(phone)
    texting.run_to_completion()
    assert texting.request(result.request_id).state is RequestState.FAILED
    (sent,) = texting.texts(direction="outbound")
    assert (sent.status, sent.error_code) == ("undelivered", "30006")
    with texting.runtime.db.session() as session:
        outcome = session.scalar(select(SmsConversation.outcome))
    assert outcome == "undelivered"


def test_the_newest_open_survey_of_a_number_takes_the_reply(texting):
    phone = "+14155550713"
    older = texting.intake(phone, ended_at=texting.now() - timedelta(minutes=30))
    texting.run_to_completion()
    # A second support call while the first survey is open is suppressed (under way)...
    assert texting.intake(phone).reason == "survey_under_way"
    # ... so two open ones exist only across surveys the rules let through: make one.
    with texting.runtime.db.session() as session:
        session.get(SurveyRequest, older.request_id).state = RequestState.COMPLETED
    newer = texting.intake(phone)
    texting.run_to_completion()
    with texting.runtime.db.session() as session:
        session.get(SurveyRequest, older.request_id).state = RequestState.TEXTING
    texting.text(phone, "6")
    assert "nps" in texting.answers(newer.request_id)
    assert texting.answers(older.request_id) == {}


def test_a_text_from_a_stranger_is_kept_and_not_answered(texting):
    texting.text("+14155550714", "Who is this?")
    (kept,) = texting.texts(direction="inbound")
    assert (kept.purpose, kept.conversation_id, kept.body) == (
        "unknown_sender",
        None,
        "Who is this?",
    )
    assert texting.received("+14155550714") == []


def test_the_fallback_texts_the_survey_after_the_last_unanswered_call(texting):
    phone = "+14155550715"
    texting.network.set_persona(phone, Persona.no_answer())
    result = texting.intake(phone, survey="fallback")
    assert result.channel is Channel.VOICE
    texting.run_to_completion()
    request = texting.request(result.request_id)
    assert [a.status for a in request.attempts] == ["no-answer", "no-answer"]
    assert request.channel is Channel.SMS_FALLBACK
    assert request.state is RequestState.TEXTING
    (question,) = texting.received(phone)
    assert question.endswith("Reply with a number from 0 to 10.")
    texting.text(phone, "8")
    request = texting.request(result.request_id)
    assert request.state is RequestState.COMPLETED
    assert [(a.question_key, a.value, a.channel) for a in request.answers] == [
        ("nps", 8, "sms_fallback")
    ]


def test_no_fallback_for_a_survey_answered_by_voice_or_a_landline(texting):
    answered = "+14155550716"
    texting.network.set_persona(answered, Persona.answering(["9"]))
    voice = texting.intake(answered, survey="fallback")
    landline = "+442079460958"  # a London fixed line: the numbering plan says so
    texting.network.set_persona(landline, Persona.no_answer())
    fixed = texting.intake(landline, survey="fallback")
    texting.run_to_completion()
    assert texting.request(voice.request_id).state is RequestState.COMPLETED
    assert texting.request(fixed.request_id).state is RequestState.NO_ANSWER
    assert texting.request(fixed.request_id).channel is Channel.VOICE
    assert texting.received(answered) == [] and texting.received(landline) == []


def test_a_landline_cannot_be_sent_a_survey_by_text(texting):
    result = texting.intake("+442079460958")
    assert (result.reason, result.detail) == (
        "uncallable_phone",
        "+442079460958 is a landline: it cannot take texts",
    )


def test_texts_wait_for_the_messaging_hours(texting):
    phone = "+14155550717"
    # 03:05 in California: the first text waits for 09:00 local (17:00 UTC).
    texting.network.clock.set(datetime(2026, 11, 24, 11, 5, tzinfo=UTC))
    result = texting.intake(phone)
    assert result.due_at == datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
    texting.work()
    assert texting.received(phone) == []
    texting.run_to_completion()
    assert len(texting.received(phone)) == 1


def test_a_number_twilio_blocked_after_stop_is_opted_out_when_texted(texting):
    phone = "+14155550718"
    # The customer texted STOP to the number before aftercall knew them (Twilio keeps it).
    texting.network.text_in(phone, FROM_NUMBER, "STOP")
    texting.network.run_until_idle(timeout=30)
    with texting.runtime.db.session() as session:
        session.execute(OptOut.__table__.delete())  # as if the list had been cleared
    result = texting.intake(phone)
    texting.run_to_completion()
    assert texting.request(result.request_id).state is RequestState.OPTED_OUT
    (refused,) = texting.texts(direction="outbound")
    assert (refused.status, refused.error_code) == ("refused", "21610")


def test_calls_and_attempts_are_untouched_by_a_survey_by_text(texting):
    phone = "+14155550719"
    result = texting.intake(phone)
    texting.run_to_completion()
    with texting.runtime.db.session() as session:
        assert session.scalar(select(CallAttempt.id)) is None
    assert texting.request(result.request_id).calls_placed == 0


# -- simulated customers who text back (phonesim.TextPersona) ---------------------------


def test_customers_who_text_back_complete_the_survey_on_each_scale(texting):
    phones = [f"+141555508{n:02d}" for n in range(6)]
    targets = ("promoter", "passive", "detractor") * 2
    for phone, target in zip(phones, targets, strict=True):
        texting.network.set_texter(phone, TextPersona.answering(target=target))
    results = [texting.intake(phone) for phone in phones]
    texting.run_to_completion()
    comment = "What should we improve? Reply with a few words, or SKIP."
    for phone, result, target in zip(phones, results, targets, strict=True):
        request = texting.request(result.request_id)
        assert request.state is RequestState.COMPLETED, (target, request.state)
        values = {a.question_key: a.value for a in request.answers}
        low, high = {"promoter": (9, 10), "passive": (7, 8), "detractor": (0, 6)}[target]
        assert low <= values["nps"] <= high
        assert 1 <= values["csat"] <= 5
        # Only a detractor is asked for a comment (`when = "nps <= 6"`).
        assert (comment in texting.received(phone)) is (target == "detractor")


def test_a_confused_customer_is_reasked_once_and_then_answers(texting):
    phone = "+14155550820"
    texting.network.set_texter(phone, TextPersona.nonsense_first(("what?",), target="promoter"))
    result = texting.intake(phone)
    texting.run_to_completion()
    request = texting.request(result.request_id)
    assert request.state is RequestState.COMPLETED
    assert {a.question_key for a in request.answers} >= {"nps", "csat"}
    inbound = [t.purpose for t in texting.texts(direction="inbound")]
    assert inbound[0] == "not_understood" and "answer" in inbound


def test_a_customer_who_texts_stop_is_never_texted_or_called_again(texting):
    phone = "+14155550821"
    texting.network.set_texter(phone, TextPersona.stops(after=1))
    result = texting.intake(phone)
    texting.run_to_completion()
    request = texting.request(result.request_id)
    assert request.state is RequestState.OPTED_OUT
    assert [a.question_key for a in request.answers] == ["nps"]
    assert texting.intake(phone, survey="post-call").reason == "opted_out"


def test_a_late_reply_finds_the_survey_closed(texting):
    phone = "+14155550822"
    texting.network.set_texter(phone, TextPersona.late(hours=30))
    result = texting.intake(phone)
    texting.run_to_completion()  # the late reply arrives 30 simulated hours on
    assert texting.request(result.request_id).state is RequestState.NO_REPLY
    assert texting.received(phone)[-1] == "This survey has closed. Thank you for your time."
    assert texting.answers(result.request_id) == {}


def test_the_fallback_reaches_a_customer_who_never_picks_up_but_texts_back(texting):
    phone = "+14155550823"
    texting.network.set_persona(phone, Persona.no_answer())
    texting.network.set_texter(phone, TextPersona.answering(target="promoter"))
    result = texting.intake(phone, survey="fallback")
    texting.run_to_completion()
    request = texting.request(result.request_id)
    assert (request.channel, request.state) == (Channel.SMS_FALLBACK, RequestState.COMPLETED)
    assert len(request.attempts) == 2
    assert request.answers[0].value in (9, 10)


def test_a_text_whose_job_redis_lost_is_sent_by_the_cron(texting):
    phone = "+14155550830"
    result = texting.intake(phone)
    texting.run_to_completion()
    texting.network.text_in(phone, FROM_NUMBER, "9")
    texting.network.run_until_idle(timeout=30)  # the reply is decided, its job queued...
    texting.messages.empty()  # ... and lost with Redis
    (pending,) = texting.texts(status="pending")
    assert pending.purpose == "question"
    texting.network.clock.set(texting.now() + timedelta(minutes=3))
    assert resend_pending() == 1
    texting.work()
    assert texting.received(phone)[-1].startswith("How satisfied were you")
    assert texting.texts(status="pending") == []
    assert texting.request(result.request_id).state is RequestState.IN_PROGRESS


def test_two_texts_at_the_same_moment_answer_one_question_once(texting):
    """A customer who sends "4" and "3" at once: taken in turn, as if one by one."""
    phone = "+14155550831"
    result = texting.intake(phone)
    texting.run_to_completion()
    barrier = threading.Barrier(2)
    outcomes = []

    def send(sid: str, body: str) -> None:
        barrier.wait()
        inbound = conversation.Inbound(sid, phone, FROM_NUMBER, body)
        outcomes.append(conversation.receive(texting.runtime, inbound).outcome)

    threads = [
        threading.Thread(target=send, args=(f"SM{n:032d}", body))
        for n, body in ((1, "4"), (2, "3"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Taken in turn: the first answered the NPS question, the second the question
    # the first moved on to; one CSAT question was texted, never two.
    answers = texting.answers(result.request_id)
    assert outcomes == ["answer", "answer"]
    assert sorted(answers) == ["csat", "nps"]
    assert {answers["nps"].value, answers["csat"].value} == {3, 4}
    asked = [t.question_key for t in texting.texts(direction="outbound")]
    assert asked == ["nps", "csat", "improve"]  # a detractor's comment question, once


def test_a_text_decided_before_an_opt_out_is_never_sent(texting):
    phone = "+14155550832"
    result = texting.intake(phone)
    texting.run_to_completion()
    texting.network.text_in(phone, FROM_NUMBER, "8")
    texting.network.run_until_idle(timeout=30)  # the next question decided, not yet sent
    texting.network.text_in(phone, FROM_NUMBER, "¡Baja!")
    texting.network.run_until_idle(timeout=30)  # the opt-out arrives before any worker ran
    texting.work()
    csat = [t.status for t in texting.texts(direction="outbound") if t.question_key == "csat"]
    assert csat == ["canceled"]
    assert not any(body.startswith("How satisfied") for body in texting.received(phone))
    assert texting.request(result.request_id).state is RequestState.OPTED_OUT


def test_an_opening_text_held_up_for_hours_is_not_sent_late(texting):
    phone = "+14155550833"
    result = texting.intake(phone)
    with texting.runtime.db.session() as session:
        session.get(SurveyRequest, result.request_id).due_at = None
    _, text_id = conversation.open_conversation(texting.runtime, result.request_id)
    assert text_id is not None  # decided, then the worker was down for two hours
    texting.network.clock.set(texting.now() + timedelta(hours=2))
    assert sender.send(texting.runtime, text_id) == "canceled: stale"
    assert texting.received(phone) == []
    assert texting.request(result.request_id).state is RequestState.FAILED
