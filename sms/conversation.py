"""A survey by text, message by message: opened, answered, delivered (or not), expired.

The dialer hands a request over when its first text is due (core.events.text_due, after
its rules, the messaging hours and the pacer); from then on this module decides:

- `open_conversation()`: the first text (who asks, how to opt out, the first question),
  the request `texting`;
- `receive()`: a customer's text, from the signed inbound webhook. Every text is kept
  (sms_messages) with what it meant, a MessageSid seen before changes nothing, and
  the newest open conversation of the sender is the one answered. A reply is read like
  a key press (sms.replies); a wrong one gets one re-ask, then the survey moves on
  (core.flow, with at most two tries); STOP and its kin put the number on the one
  do-not-call list (calls and texts alike), HELP gets the company and the opt-out;
- `record_status()`: Twilio's status callbacks, never moving a text's status backwards;
  a question that could not be delivered ends the conversation, counted as undelivered;
- `expire()`: a conversation quiet for the survey's `expire_hours` closes: partial if
  anything was answered, else no reply.

Texts are written as `pending` rows in the unit of work that decides them and handed to
Twilio after the commit (`sms.sender`, by an rq job on the messages queue): a text is
never sent for a decision that did not commit, and a lost job is found again by
`pending_texts()`. Nothing here knows HTTP or rq's worker.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from prometheus_client import Counter
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import flow
from core.db import utcnow
from core.events import AnswerGiven, answer_given, owe_alert
from core.masking import mask_phone
from core.models import (
    Answer,
    OptOut,
    RequestState,
    SmsConversation,
    SmsMessage,
    SurveyRequest,
    SurveyVersion,
)
from core.runtime import Runtime
from core.survey import Question, QuestionKind, SurveyDefinition, UnknownSurvey
from core.survey_versions import definition_of, version_for
from sms import replies, wording

log = logging.getLogger(__name__)

# A wrong reply gets one re-ask, then the survey moves on: texting the same question
# three times reads as spam.
SMS_MAX_TRIES = 2
# A text from a number whose conversation closed this recently is told it closed.
RECENTLY_CLOSED = timedelta(days=7)
# What the do-not-call list takes: a phone number in E.164, as intake stores them.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# States of a request whose conversation is still going.
OPEN_STATES = (RequestState.TEXTING, RequestState.IN_PROGRESS)


# What inbound texts were, counted for /metrics (registry=None: each app's /metrics
# registry registers it, aftercall.observability).
INBOUND_TEXTS = Counter(
    "aftercall_inbound_texts",
    "Texts customers sent to the survey number, by what they were (answer, "
    "not_understood, opt_out, opt_in, help, expired, unknown_sender, duplicate).",
    ["outcome"],
    registry=None,
)


class Outcome(StrEnum):
    """What an inbound text was: logged, counted (/metrics) and kept on its row."""

    ANSWER = "answer"
    NOT_UNDERSTOOD = "not_understood"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    EXPIRED = "expired"  # a reply to a survey that has closed
    UNKNOWN_SENDER = "unknown_sender"  # no survey was ever texted to this number
    DUPLICATE = "duplicate"  # Twilio delivered the same MessageSid again


@dataclass(frozen=True)
class Inbound:
    """An inbound text as Twilio posted it."""

    message_sid: str
    phone: str  # From
    to: str
    body: str
    opt_out_type: str | None = None  # OptOutType: Twilio handled a keyword itself


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    request_id: int | None = None
    texts: tuple[int, ...] = ()  # outbound texts to send now (sms_messages ids)


def open_conversation(runtime: Runtime, request_id: int) -> tuple[str, int | None]:
    """The request's first text, written as pending; returns what happened and the text
    to send (None when nothing is to be sent)."""
    now = runtime.now()
    sender = survey_number(runtime)
    if not sender:
        raise LookupError(
            "SURVEY_NUMBER (or TWILIO_FROM_NUMBER) is not set: no number to text from"
        )
    with runtime.db.session() as session:
        request = session.get(SurveyRequest, request_id)
        if request is None:
            return "unknown request", None
        if request.state is not RequestState.SCHEDULED or not request.channel.texts:
            return f"skipped: request is {request.state.value} ({request.channel.value})", None
        pinned = _pinned(runtime, session, request)
        if pinned is None:
            return f"failed: unknown survey {request.survey_name!r}", None
        version, definition = pinned
        language = definition.language_for(request.language)
        step = flow.opening(definition)
        if not isinstance(step, flow.Ask):  # a survey has a first, unconditional question
            return "skipped: the survey asks nothing", None
        moved = session.execute(
            update(SurveyRequest)
            .where(SurveyRequest.id == request_id, SurveyRequest.state == RequestState.SCHEDULED)
            .values(state=RequestState.TEXTING, due_at=None)
        ).rowcount
        if not moved:
            return "skipped: another worker opened it", None
        conversation = SmsConversation(
            request_id=request_id,
            phone=request.phone,
            sender=sender,
            survey_version_id=version.id,
            language=language,
            question_key=step.question.key,
            try_number=1,
            expires_at=now + timedelta(hours=definition.sms.expire_hours),
            # The dialer's clock, not the database's: fatigue and lost texts are judged
            # on it (the demo and the tests run it simulated).
            created_at=now,
        )
        session.add(conversation)
        try:
            session.flush()
        except IntegrityError:  # texted before (one conversation per request)
            session.rollback()
            return "skipped: already texted", None
        text = _text(
            session,
            conversation,
            wording.opening_text(
                definition, step.question, language, runtime.settings.company_name
            ),
            "question",
            step.question.key,
            now,
        )
        return f"texting: question {step.question.key}", text.id


def survey_number(runtime: Runtime) -> str:
    """The number texts come from: the survey number, whose messaging URL is
    /sms/inbound, so that replies come back to aftercall."""
    return runtime.settings.survey_number or runtime.settings.twilio_from_number


def receive(runtime: Runtime, inbound: Inbound) -> Received:
    """A customer's text: kept, understood, acted on; the texts to send back."""
    now = runtime.now()
    answered: AnswerGiven | None = None
    with runtime.db.session() as session:
        # The text is written first: a MessageSid seen before fails here (nothing else is
        # done for it), and on SQLite the write takes the database's write lock before
        # anything is read, so two texts of one customer at once are taken in turn.
        message = SmsMessage(
            direction="inbound",
            message_sid=inbound.message_sid,
            phone=inbound.phone,
            body=replies.storable(inbound.body[: replies.MAX_BODY]),
            status="received",
            purpose=Outcome.UNKNOWN_SENDER.value,
            created_at=now,
        )
        session.add(message)
        try:
            session.flush()
        except IntegrityError:  # the same MessageSid, delivered again
            session.rollback()
            INBOUND_TEXTS.labels(Outcome.DUPLICATE.value).inc()
            return Received(Outcome.DUPLICATE)
        # The newest open survey of the sender, locked (PostgreSQL) until this text's
        # decisions commit: a second text at the same moment waits, then sees them.
        conversation = session.scalar(
            select(SmsConversation)
            .join(SurveyRequest, SurveyRequest.id == SmsConversation.request_id)
            .where(
                SmsConversation.phone == inbound.phone,
                SmsConversation.closed_at.is_(None),
                SurveyRequest.state.in_(OPEN_STATES),
            )
            .order_by(SmsConversation.created_at.desc(), SmsConversation.id.desc())
            .limit(1)
            .with_for_update(of=SmsConversation)
        )
        if conversation is not None:
            message.conversation_id = conversation.id
            message.question_key = conversation.question_key
        turn = _Turn(runtime, session, inbound, conversation, now, message)
        received = turn.take()
        message.purpose = received.outcome.value
        answered = turn.answered
        if answered is not None:
            # The alert it may owe, in the answer's own transaction (core.events).
            owe_alert(runtime, session.connection(), answered, now)
    if answered is not None:
        answer_given(runtime, answered)
    INBOUND_TEXTS.labels(received.outcome.value).inc()
    log.info(
        "text from %s: %s (request %s)",
        mask_phone(inbound.phone),
        received.outcome.value,
        received.request_id,
    )
    return received


class _Turn:
    """One inbound text's decisions, in the webhook's unit of work."""

    def __init__(
        self,
        runtime: Runtime,
        session: Session,
        inbound: Inbound,
        conversation: SmsConversation | None,
        now: datetime,
        message: SmsMessage,
    ) -> None:
        self.message = message
        self.runtime = runtime
        self.session = session
        self.inbound = inbound
        self.conversation = conversation
        self.now = now
        self.texts: list[int] = []
        self.answered: AnswerGiven | None = None

    def take(self) -> Received:
        keyword = replies.keyword(self.inbound.body, self.inbound.opt_out_type)
        if keyword is replies.Keyword.STOP:
            return self.opt_out()
        if keyword is replies.Keyword.HELP:
            if self.inbound.opt_out_type is None:  # Twilio did not answer it already
                self.reply(self.conversation, "help", definition=self._definition())
            return self.received(Outcome.HELP)
        if keyword is replies.Keyword.START and self.resubscribe():
            return self.received(Outcome.OPT_IN)
        conversation = self.conversation
        if conversation is None:
            return self.no_conversation()
        if conversation.expires_at <= self.now:
            close(self.session, conversation, self.now, expired=True)
            self.reply(conversation, "closed")
            return self.received(Outcome.EXPIRED)
        return self.answer(conversation)

    def received(self, outcome: Outcome) -> Received:
        request_id = self.conversation.request_id if self.conversation else None
        return Received(outcome, request_id, tuple(self.texts))

    def answer(self, conversation: SmsConversation) -> Received:
        definition = self._definition()
        question = definition.question(conversation.question_key or "")
        if question is None:  # the conversation asks nothing more: it is over
            close(self.session, conversation, self.now, expired=False)
            return self.received(Outcome.EXPIRED)
        reply = replies.interpret(question.kind, conversation.language, self.inbound.body)
        if isinstance(reply, replies.OptOut):
            return self.opt_out()
        self._picked_up(conversation)
        if isinstance(reply, replies.Answer):
            self._store(conversation, question, reply)
            step = flow.after_answer(definition, question.key, self._answers(conversation))
            outcome = Outcome.ANSWER
        else:
            step = flow.after_rejection(
                replace(definition, max_tries=min(definition.max_tries, SMS_MAX_TRIES)),
                question,
                conversation.try_number,
                reply.reason,
                self._answers(conversation),
            )
            outcome = Outcome.NOT_UNDERSTOOD
        self.next_step(conversation, definition, step)
        return self.received(outcome)

    def next_step(
        self, conversation: SmsConversation, definition: SurveyDefinition, step: flow.Step
    ) -> None:
        if isinstance(step, flow.Ask):
            conversation.question_key = step.question.key
            conversation.try_number = step.attempt
            # Quiet for `expire_hours` after the last reply, not after the first text.
            conversation.expires_at = self.now + timedelta(hours=definition.sms.expire_hours)
            language = conversation.language
            if step.retry_reason is not None:
                body = wording.reask_text(definition, step.question, language)
                self.reply(conversation, "reask", body=body, question=step.question)
            else:
                body = wording.question_text(step.question, language)
                self.reply(conversation, "question", body=body, question=step.question)
            return
        finish(self.session, conversation, self.now)
        self.reply(conversation, "thanks", definition=definition)

    def opt_out(self) -> Received:
        """STOP (or an opt-out phrase): the number on the do-not-call list, every open
        conversation of it ended opted out."""
        phone = self.inbound.phone
        listed = self.session.scalar(select(OptOut.id).where(OptOut.phone == phone))
        # Only a phone number goes on the list (a "whatsapp:" address or anything else
        # Twilio may name a sender is kept with the text, not listed).
        if listed is None and _E164.fullmatch(phone):
            try:
                with self.session.begin_nested():
                    self.session.add(
                        OptOut(
                            phone=phone,
                            source="sms",
                            request_id=self.conversation.request_id if self.conversation else None,
                        )
                    )
            except IntegrityError:
                pass  # listed at the same moment by another path
        open_ones = self.session.scalars(
            select(SmsConversation).where(
                SmsConversation.phone == phone, SmsConversation.closed_at.is_(None)
            )
        ).all()
        for conversation in open_ones:
            conversation.closed_at, conversation.outcome = self.now, "opted_out"
            self.session.execute(
                update(SurveyRequest)
                .where(
                    SurveyRequest.id == conversation.request_id,
                    SurveyRequest.state.not_in(
                        (RequestState.OPTED_OUT, RequestState.COMPLETED, RequestState.PARTIAL)
                    ),
                )
                .values(state=RequestState.OPTED_OUT, due_at=None)
            )
        # Texts decided before the opt-out and not yet sent never go.
        self.session.execute(
            update(SmsMessage)
            .where(
                SmsMessage.phone == phone,
                SmsMessage.direction == "outbound",
                SmsMessage.status == "pending",
            )
            .values(status="canceled")
        )
        if self.inbound.opt_out_type is None:
            # Twilio blocked nothing and answered nothing (a local-language keyword, or
            # a phrase): the confirmation is ours to send, and the last text allowed.
            self.reply(self.conversation, "opted_out", definition=self._definition())
        return self.received(Outcome.OPT_OUT)

    def resubscribe(self) -> bool:
        """START (or YES) from a number that opted out by text: off the list again. A
        number listed another way (the keypad, the API) stays: START is the carriers'
        word for texts, not a consent to calls the customer refused otherwise."""
        listed = self.session.scalar(
            select(OptOut).where(OptOut.phone == self.inbound.phone, OptOut.source == "sms")
        )
        if listed is None:
            return False
        self.session.delete(listed)
        return True

    def no_conversation(self) -> Received:
        """A text with no open survey: a late reply to a closed one, or a stranger's."""
        recent = self.session.scalar(
            select(SmsConversation)
            .where(
                SmsConversation.phone == self.inbound.phone,
                SmsConversation.closed_at >= self.now - RECENTLY_CLOSED,
            )
            .order_by(SmsConversation.closed_at.desc())
            .limit(1)
        )
        if recent is None:
            return self.received(Outcome.UNKNOWN_SENDER)
        self.conversation = recent
        self.message.conversation_id = recent.id  # a late reply, kept with its survey
        told = self.session.scalar(
            select(
                exists().where(
                    SmsMessage.conversation_id == recent.id, SmsMessage.purpose == "closed"
                )
            )
        )
        if not told and recent.outcome not in ("opted_out", "undelivered"):
            self.reply(recent, "closed")  # once: a closed survey does not chat back
        return self.received(Outcome.EXPIRED)

    def reply(
        self,
        conversation: SmsConversation | None,
        purpose: str,
        *,
        body: str | None = None,
        question: Question | None = None,
        definition: SurveyDefinition | None = None,
    ) -> None:
        if body is None:
            definition = definition or self._definition()
            language = conversation.language if conversation else "en"
            body = wording.phrase(definition, language, purpose, self.runtime.settings.company_name)
        text = SmsMessage(
            conversation_id=conversation.id if conversation else None,
            direction="outbound",
            phone=self.inbound.phone,
            body=body,
            status="pending",
            purpose=purpose,
            question_key=question.key if question else None,
            created_at=self.now,
        )
        self.session.add(text)
        self.session.flush()
        self.texts.append(text.id)

    def _definition(self) -> SurveyDefinition:
        if self.conversation is not None:
            version = self.session.get(SurveyVersion, self.conversation.survey_version_id)
            assert version is not None  # a foreign key guarantees it
            return definition_of(version)
        # A text with no conversation (HELP from a stranger): the default survey's
        # company name, or the channel's own words.
        catalog = self.runtime.catalog
        name = self.runtime.settings.default_survey
        if name not in catalog:
            names = catalog.names()
            if not names:
                return SurveyDefinition(name="none", questions=())
            name = names[0]
        return catalog.get(name)

    def _picked_up(self, conversation: SmsConversation) -> None:
        self.session.execute(
            update(SurveyRequest)
            .where(
                SurveyRequest.id == conversation.request_id,
                SurveyRequest.state == RequestState.TEXTING,
            )
            .values(state=RequestState.IN_PROGRESS)
        )

    def _store(
        self, conversation: SmsConversation, question: Question, reply: replies.Answer
    ) -> None:
        if question.kind is QuestionKind.COMMENT and not reply.text:
            return  # SKIP: a comment is optional
        try:
            with self.session.begin_nested():
                self.session.add(
                    Answer(
                        request_id=conversation.request_id,
                        conversation_id=conversation.id,
                        survey_version_id=conversation.survey_version_id,
                        question_key=question.key,
                        kind=question.kind.value,
                        value=reply.value,
                        keys="",
                        input="text",
                        transcript=reply.text,
                        received_at=self.now,
                    )
                )
        except IntegrityError:
            return  # answered already (one answer per question)
        self.answered = AnswerGiven(conversation.request_id, question.kind.value, reply.value)

    def _answers(self, conversation: SmsConversation) -> dict[str, int | None]:
        rows = self.session.execute(
            select(Answer.question_key, Answer.value).where(
                Answer.request_id == conversation.request_id
            )
        )
        return {key: value for key, value in rows}


def finish(session: Session, conversation: SmsConversation, now: datetime) -> None:
    """The last question was answered (or given up on): completed, or abandoned if
    nothing was answered, as a call that reached its end."""
    answered = session.scalar(select(exists().where(Answer.request_id == conversation.request_id)))
    conversation.closed_at, conversation.question_key = now, None
    conversation.outcome = "completed" if answered else "abandoned"
    state = RequestState.COMPLETED if answered else RequestState.ABANDONED
    session.execute(
        update(SurveyRequest)
        .where(SurveyRequest.id == conversation.request_id, SurveyRequest.state.in_(OPEN_STATES))
        .values(state=state)
    )


def close(session: Session, conversation: SmsConversation, now: datetime, *, expired: bool) -> None:
    """End a conversation before its last question: partial if anything was answered,
    else no reply (expired) or failed (undelivered)."""
    answered = session.scalar(select(exists().where(Answer.request_id == conversation.request_id)))
    if answered:
        state = RequestState.PARTIAL
    else:
        state = RequestState.NO_REPLY if expired else RequestState.FAILED
    conversation.closed_at = now
    conversation.outcome = "expired" if expired else "undelivered"
    session.execute(
        update(SurveyRequest)
        .where(SurveyRequest.id == conversation.request_id, SurveyRequest.state.in_(OPEN_STATES))
        .values(state=state)
    )


def expire(runtime: Runtime) -> int:
    """Close the conversations that have been quiet for their survey's expire_hours."""
    now = runtime.now()
    closed = 0
    with runtime.db.session() as session:
        due = session.scalars(
            select(SmsConversation)
            .where(SmsConversation.closed_at.is_(None), SmsConversation.expires_at <= now)
            .order_by(SmsConversation.expires_at)
            .limit(1000)
        ).all()
        for conversation in due:
            close(session, conversation, now, expired=True)
            closed += 1
    return closed


# Twilio's message statuses in the order they happen; a callback never moves a text back
# (they may arrive out of order, and twice). `pending` and `submitting` are aftercall's:
# not yet handed to Twilio, and being handed over. `refused`: Twilio's API said no.
_STATUS_RANK = {
    "pending": 0, "submitting": 1, "accepted": 2, "scheduled": 2, "queued": 3, "sending": 4,
    "sent": 5, "delivered": 6, "undelivered": 6, "failed": 6, "refused": 6, "canceled": 6,
    "read": 7,
}  # fmt: skip
UNDELIVERED = frozenset({"undelivered", "failed", "refused", "canceled"})


def record_status(
    runtime: Runtime, message_id: int, message_sid: str, status: str, error_code: str | None
) -> bool:
    """A status callback for one of aftercall's texts. Returns False when aftercall
    sent no such text (the callback's URL named another, or the SID differs)."""
    status = status.strip().lower()
    if status not in _STATUS_RANK:
        return False
    with runtime.db.session() as session:
        text = session.get(SmsMessage, message_id, with_for_update=True)
        if text is None or text.direction != "outbound":
            return False
        if text.message_sid is None:
            text.message_sid = message_sid
        elif text.message_sid != message_sid:
            return False
        if _STATUS_RANK[status] <= _STATUS_RANK.get(text.status, 0):
            return True  # a repeat, or older news
        text.status = status
        if error_code:
            text.error_code = error_code[:16]
        if status in UNDELIVERED:
            undelivered(session, text, runtime.now())
    return True


def undelivered(session: Session, text: SmsMessage, now: datetime) -> None:
    """A question that never reached the customer ends the conversation: nobody can
    answer what they never got. Other texts (a thanks, a HELP reply) change nothing."""
    if text.purpose not in ("question", "reask") or text.conversation_id is None:
        return
    conversation = session.get(SmsConversation, text.conversation_id)
    if conversation is not None and conversation.closed_at is None:
        close(session, conversation, now, expired=False)


# A text left `submitting` this long lost its worker mid-send: it goes back to pending
# (Twilio may have it: sent twice is the lesser harm than a survey that never starts).
SUBMITTING_LOST = timedelta(minutes=10)
# Texts older than this are not sent again: a reply a day late answers nothing.
RESEND_AT_MOST = timedelta(days=1)


def pending_texts(runtime: Runtime, older_than: timedelta) -> list[int]:
    """Texts decided but never handed to Twilio (their job was lost, or their worker
    died mid-send): to send again, if they are not older than a day."""
    now = runtime.now()
    with runtime.db.session() as session:
        session.execute(
            update(SmsMessage)
            .where(
                SmsMessage.status == "submitting",
                SmsMessage.updated_at <= utcnow() - SUBMITTING_LOST,
            )
            .values(status="pending")
        )
        return list(
            session.scalars(
                select(SmsMessage.id)
                .where(
                    SmsMessage.status == "pending",
                    SmsMessage.created_at <= now - older_than,
                    SmsMessage.created_at >= now - RESEND_AT_MOST,
                )
                .order_by(SmsMessage.id)
                .limit(1000)
            )
        )


def _text(
    session: Session,
    conversation: SmsConversation,
    body: str,
    purpose: str,
    key: str | None,
    now: datetime,
) -> SmsMessage:
    text = SmsMessage(
        conversation_id=conversation.id,
        direction="outbound",
        phone=conversation.phone,
        body=body,
        status="pending",
        purpose=purpose,
        question_key=key,
        created_at=now,
    )
    session.add(text)
    session.flush()
    return text


def _pinned(
    runtime: Runtime, session: Session, request: SurveyRequest
) -> tuple[SurveyVersion, SurveyDefinition] | None:
    if request.survey_version is not None:
        return request.survey_version, definition_of(request.survey_version)
    try:
        definition = runtime.catalog.get(request.survey_name)
    except UnknownSurvey:
        log.error("request %s names unknown survey %r", request.id, request.survey_name)
        return None
    version = version_for(session, definition)
    request.survey_version_id = version.id
    return version, definition_of(version)
