"""Twilio's side of the SMS channel for the webhook tests: signed posts to /sms/inbound and
/sms/status, surveys opened by text on a request inserted as the dialer leaves it, and
the rows, the messages queue and the clock to check what happened."""

from __future__ import annotations

import itertools
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import select
from werkzeug.test import TestResponse

from core.config import DEFAULT_SURVEYS_DIR
from core.models import (
    Answer,
    Channel,
    OptOut,
    RequestState,
    SmsConversation,
    SmsMessage,
    SurveyRequest,
)
from core.runtime import Runtime
from core.survey import SurveyCatalog
from scoring.alerts import ALERT_QUEUE, queue_due_alerts
from sms import conversation
from sms.outbox import MESSAGE_QUEUE
from tests.conftest import ACCOUNT_SID, FROM_NUMBER, PUBLIC_BASE_URL, sign

NOW = datetime(2026, 11, 23, 18, 5, tzinfo=UTC)
CUSTOMER = "+14155550123"

BY_TEXT = """
name = "by-text"
company_name = "Acme"
channel = "sms"

[[questions]]
key = "nps"
kind = "nps"
prompt.en = "On a scale from 0 to 10, how likely are you to recommend us? Press a number."
prompt.es = "Del 0 al 10, ¿nos recomendaría? Marque un número."
prompt.pl = "W skali od 0 do 10, czy polecisz nas? Wybierz liczbę."

[[questions]]
key = "resolved"
kind = "yesno"
prompt.en = "Was your problem solved? Press 1 for yes, 2 for no."
prompt.es = "¿Se resolvió su problema? Marque 1 para sí, 2 para no."
prompt.pl = "Czy problem został rozwiązany? Naciśnij 1 dla tak, 2 dla nie."

[[questions]]
key = "improve"
kind = "comment"
when = "nps <= 6"
prompt.en = "What should we improve? Tell us after the tone."
prompt.es = "¿Qué deberíamos mejorar? Díganos después del tono."
prompt.pl = "Co powinniśmy poprawić? Powiedz nam po sygnale."

[sms]
expire_hours = 24
"""


class Clock:
    """The Runtime's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def runtime(runtime: Runtime, redis_url: str, clock: Clock, tmp_path: Path) -> Runtime:
    """The root runtime with the by-text survey beside post-call, Redis db of the tests,
    detractor alerts on, and a clock the test moves."""
    surveys = tmp_path / "surveys"
    surveys.mkdir()
    shutil.copy(DEFAULT_SURVEYS_DIR / "post-call.toml", surveys)
    (surveys / "by-text.toml").write_text(BY_TEXT, encoding="utf-8")
    runtime.settings = runtime.settings.with_overrides(
        redis_url=redis_url,
        surveys_dir=surveys,
        alert_webhook_url="https://crm.example.test/hooks/aftercall",
        alert_webhook_secret="whsec-test-secret",
    )
    runtime.catalog = SurveyCatalog.from_directory(surveys)
    runtime.now = clock
    return runtime


@dataclass(frozen=True)
class Survey:
    """A request texted its first question."""

    request_id: int
    conversation_id: int
    question_text_id: int  # the opening text, pending


_sources = itertools.count(1)


def open_survey(
    runtime: Runtime,
    phone: str = CUSTOMER,
    *,
    survey: str = "by-text",
    language: str = "en",
    channel: Channel = Channel.SMS,
) -> Survey:
    """Insert a scheduled SMS request as the dialer leaves it, and open its conversation."""
    with runtime.db.session() as session:
        request = SurveyRequest(
            phone=phone,
            source_call_id=f"crm-{next(_sources)}",
            agent="alice",
            queue="billing",
            team="north",
            language=language,
            call_ended_at=runtime.now() - timedelta(minutes=10),
            survey_name=survey,
            state=RequestState.SCHEDULED,
            channel=channel,
        )
        session.add(request)
        session.flush()
        request_id = request.id
    note, text_id = conversation.open_conversation(runtime, request_id)
    assert text_id is not None, note
    with runtime.db.session() as session:
        conversation_id = session.scalar(
            select(SmsConversation.id).where(SmsConversation.request_id == request_id)
        )
    return Survey(request_id, conversation_id, text_id)


_sids = itertools.count(1)


def message_sid() -> str:
    return f"SM{next(_sids):032x}"


def post_signed(
    client: FlaskClient, path: str, params: dict[str, str], signature: str | None = None
) -> TestResponse:
    """Post `params` to `path` as Twilio does, signed for the public URL (or `signature`)."""
    if signature is None:
        signature = sign(PUBLIC_BASE_URL + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def inbound_params(
    phone: str, body: str, sid: str | None = None, opt_out_type: str | None = None
) -> dict[str, str]:
    sid = sid or message_sid()
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": phone,
        "To": FROM_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    if opt_out_type is not None:
        params["OptOutType"] = opt_out_type
    return params


def text_in(
    client: FlaskClient,
    body: str,
    phone: str = CUSTOMER,
    *,
    sid: str | None = None,
    opt_out_type: str | None = None,
) -> ET.Element:
    """The customer texts the survey number; the webhook's TwiML, which must be empty."""
    response = post_signed(client, "/sms/inbound", inbound_params(phone, body, sid, opt_out_type))
    return empty_twiml(response)


def empty_twiml(response: TestResponse) -> ET.Element:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    assert list(root) == []  # replies go out through the Messages API, never as TwiML
    return root


def status_callback(
    client: FlaskClient,
    message_id: int | str,
    sid: str,
    status: str,
    error_code: str | None = None,
) -> TestResponse:
    params = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": FROM_NUMBER,
        "To": CUSTOMER,
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        params["ErrorCode"] = error_code
    return post_signed(client, f"/sms/status?message={quote(str(message_id))}", params)


def handed_to_twilio(runtime: Runtime, message_id: int, sid: str, status: str = "queued") -> None:
    """What sms.sender.send records once Twilio accepted a text."""
    with runtime.db.session() as session:
        text = session.get(SmsMessage, message_id)
        text.message_sid, text.status = sid, status


# -- reading back ------------------------------------------------------------------------


def texts(runtime: Runtime, **where: object) -> list[SmsMessage]:
    with runtime.db.session() as session:
        query = select(SmsMessage).order_by(SmsMessage.id)
        for name, value in where.items():
            query = query.where(getattr(SmsMessage, name) == value)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def text_row(runtime: Runtime, message_id: int) -> SmsMessage:
    with runtime.db.session() as session:
        row = session.get(SmsMessage, message_id)
        session.expunge(row)
        return row


def conversation_row(runtime: Runtime, conversation_id: int) -> SmsConversation:
    with runtime.db.session() as session:
        row = session.get(SmsConversation, conversation_id)
        session.expunge(row)
        return row


def state(runtime: Runtime, request_id: int) -> RequestState:
    with runtime.db.session() as session:
        return session.get(SurveyRequest, request_id).state


def answers(runtime: Runtime, request_id: int | None = None) -> list[Answer]:
    with runtime.db.session() as session:
        query = select(Answer).order_by(Answer.id)
        if request_id is not None:
            query = query.where(Answer.request_id == request_id)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def opt_outs(runtime: Runtime) -> list[tuple[str, str, int | None]]:
    with runtime.db.session() as session:
        rows = session.execute(select(OptOut.phone, OptOut.source, OptOut.request_id))
        return sorted(tuple(row) for row in rows)


def queued_texts(runtime: Runtime) -> list[int]:
    """The text ids the messages queue holds jobs for, in order."""
    queue = Queue(MESSAGE_QUEUE, connection=runtime.redis)
    return [job.args[0] for job in queue.get_jobs()]


def alert_jobs(runtime: Runtime) -> list[str]:
    """The alert jobs queued once the worker's drain has read the outbox (scoring.alerts)."""
    queue_due_alerts(runtime)
    return Queue(ALERT_QUEUE, connection=runtime.redis).get_job_ids()
