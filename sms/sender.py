"""Handing a text to Twilio's Messages API, once, and recording what Twilio said.

A text is a `pending` row (sms.conversation wrote it); `send()` marks it `submitting`
in a commit of its own before the API call, so two workers never both send it, then
stores Twilio's MessageSid and status. What Twilio refuses:

- 21610: the customer texted STOP to Twilio's own handling before: the number goes on
  the do-not-call list, as if they had texted it to us;
- other 4xx (21211 invalid number, 21408 region not enabled, 21614 not a mobile number,
  ...): final, the text `refused` with the code; a refused question ends its
  conversation (undelivered);
- 429, 5xx and network errors: the row goes back to `pending` and the error is raised,
  so that the job's Retry tries again later. A network error after the request left
  may mean Twilio accepted it: the retry may then send it twice, the lesser harm than
  a survey that never starts (calls take the other side: dialer.placement).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from core.models import OptOut, RequestState, SmsConversation, SmsMessage, SurveyRequest
from core.pacing import MESSAGE_PACING_KEY, acquire_call_slot
from core.runtime import Runtime
from sms.conversation import open_conversation, survey_number, undelivered
from sms.outbox import queue_texts
from sms.segments import segments

log = logging.getLogger(__name__)

UNSUBSCRIBED = 21610


class TransientSendError(Exception):
    """Twilio could not take the text now; the job retries."""


# How long a worker may wait for each pacing slot before handing the text back.
MAX_PACING_WAIT = 2.0


def start(runtime: Runtime, request_id: int) -> str:
    """Open a request's text survey and send its first text now: the dialer's job,
    which holds one pacing slot for it (core.events.text_due); a text of more segments
    takes a slot for each of the others first. No slot in time, or a transient
    refusal, leaves the text to the messages queue (paced, retried)."""
    note, text_id = open_conversation(runtime, request_id)
    if text_id is None:
        return note
    if pace(runtime, segments_of(runtime, text_id) - 1) is not None:
        queue_texts(runtime, [text_id])
        return f"{note}: queued (pacing)"
    try:
        return f"{note}: {send(runtime, text_id)}"
    except TransientSendError as exc:
        queue_texts(runtime, [text_id])
        return f"{note}: queued again after {exc}"


def pace(runtime: Runtime, slots: int) -> float | None:
    """Take `slots` slots of the texts' pacer, one per segment: Twilio's per-number
    limits count segments (a US long code sends one a second). None when all were
    granted, else the seconds to wait before trying again (the slots taken meanwhile
    stay spent: the pacer errs towards sending less, never more)."""
    for _ in range(max(slots, 0)):
        admission = acquire_call_slot(
            runtime.redis,
            runtime.settings.messages_per_second,
            MAX_PACING_WAIT,
            MESSAGE_PACING_KEY,
        )
        if not admission.granted:
            return admission.retry_after
    return None


def is_pending(runtime: Runtime, message_id: int) -> bool:
    with runtime.db.session() as session:
        status = session.scalar(select(SmsMessage.status).where(SmsMessage.id == message_id))
    return status == "pending"


def segments_of(runtime: Runtime, message_id: int) -> int:
    """How many segments text `message_id` is sent as (1 for a text that is gone)."""
    with runtime.db.session() as session:
        body = session.scalar(select(SmsMessage.body).where(SmsMessage.id == message_id))
    return segments(body or "")


def status_callback_url(runtime: Runtime, message_id: int) -> str:
    return f"{runtime.settings.public_base_url}/sms/status?message={message_id}"


def send(runtime: Runtime, message_id: int) -> str:
    """Send text `message_id` if it is still pending. Returns what happened."""
    with runtime.db.session() as session:
        claimed = session.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message_id, SmsMessage.status == "pending")
            .values(status="submitting")
        ).rowcount
        if not claimed:
            status = session.scalar(select(SmsMessage.status).where(SmsMessage.id == message_id))
            return f"skipped: text is {status or 'unknown'}"
        text = session.get(SmsMessage, message_id)
        sender = survey_number(runtime)
        conversation = None
        if text.conversation_id is not None:
            conversation = session.get(SmsConversation, text.conversation_id)
            sender = conversation.sender
        why = _not_to_send(session, text, conversation, runtime.now())
        if why is not None:
            text.status = "canceled"
            if why == "stale" and conversation is not None:
                undelivered(session, text, runtime.now())
            log.warning("text %s not sent: %s", message_id, why)
            return f"canceled: {why}"
        to, body = text.phone, text.body
    try:
        created = runtime.twilio.messages.create(
            to=to,
            from_=sender,
            body=body,
            status_callback=status_callback_url(runtime, message_id),
        )
    except TwilioRestException as exc:
        if exc.status == 429 or exc.status >= 500:
            _back_to_pending(runtime, message_id)
            raise TransientSendError(f"Twilio error {exc.code} (HTTP {exc.status})") from exc
        return _refused(runtime, message_id, exc.code)
    except Exception as exc:
        _back_to_pending(runtime, message_id)
        raise TransientSendError(f"could not reach Twilio: {exc}") from exc
    with runtime.db.session() as session:
        session.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message_id, SmsMessage.status == "submitting")
            .values(message_sid=created.sid, status=created.status or "queued")
        )
        # A status callback faster than this commit already set the SID: keep it.
        session.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message_id, SmsMessage.message_sid.is_(None))
            .values(message_sid=created.sid)
        )
    return f"sent {created.sid}"


# An opening text not handed to Twilio this long after the dialer decided on it (inside
# the messaging hours) waited through an outage: sent now, it could arrive at night.
STALE_OPENING = timedelta(hours=1)
# What may still go to a number on the do-not-call list: the one opt-out confirmation.
_AFTER_OPT_OUT = frozenset({"opted_out"})


def _not_to_send(
    session: Session, text: SmsMessage, conversation: SmsConversation | None, now: datetime
) -> str | None:
    """Why a claimed text must not go out after all, or None: the number opted out
    since it was decided, its question's survey closed, or an opening text went stale."""
    if text.purpose not in _AFTER_OPT_OUT and session.scalar(
        select(OptOut.id).where(OptOut.phone == text.phone)
    ):
        return "the number is on the do-not-call list"
    if text.purpose in ("question", "reask") and conversation is not None:
        if conversation.closed_at is not None:
            return "its survey has closed"
        first = session.scalar(
            select(func.min(SmsMessage.id)).where(
                SmsMessage.conversation_id == conversation.id, SmsMessage.direction == "outbound"
            )
        )
        if first == text.id and now - text.created_at > STALE_OPENING:
            return "stale"
    return None


def _back_to_pending(runtime: Runtime, message_id: int) -> None:
    with runtime.db.session() as session:
        session.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message_id, SmsMessage.status == "submitting")
            .values(status="pending")
        )


def _refused(runtime: Runtime, message_id: int, code: object) -> str:
    now = runtime.now()
    with runtime.db.session() as session:
        text = session.get(SmsMessage, message_id)
        text.status, text.error_code = "refused", str(code)[:16]
        if code == UNSUBSCRIBED:
            # Twilio's own STOP handling blocks this number for our sender: the customer
            # said STOP, and it counts for calls too.
            if session.scalar(select(OptOut.id).where(OptOut.phone == text.phone)) is None:
                request_id = None
                if text.conversation_id is not None:
                    request_id = session.get(SmsConversation, text.conversation_id).request_id
                session.add(OptOut(phone=text.phone, source="sms", request_id=request_id))
            if text.conversation_id is not None:
                conversation = session.get(SmsConversation, text.conversation_id)
                if conversation.closed_at is None:
                    conversation.closed_at, conversation.outcome = now, "opted_out"
                    session.execute(
                        update(SurveyRequest)
                        .where(
                            SurveyRequest.id == conversation.request_id,
                            SurveyRequest.state.in_(
                                (RequestState.TEXTING, RequestState.IN_PROGRESS)
                            ),
                        )
                        .values(state=RequestState.OPTED_OUT)
                    )
        else:
            undelivered(session, text, now)
    log.warning("Twilio refused text %s: error %s", message_id, code)
    return f"refused: Twilio error {code}"
