"""The tables every part of aftercall shares, as SQLAlchemy 2.0 typed models.

Who writes what: `dialer/` creates survey requests and call attempts; `ivr/` records
what happened on the call (status events, answers, opt-outs, outcomes); `scoring/`
only reads. Rules that must hold whatever code path writes (one answer per question,
one survey per source call, one opt-out per number) are constraints in the database.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    select,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.db import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class RequestState(StrEnum):
    """Where a survey request is in its life.

    pending -> scheduled -> calling -> in_progress -> completed | partial | abandoned |
    opted_out; an unanswered attempt ends in no_answer, busy, voicemail or failed, from
    which the dialer may schedule another attempt.
    """

    PENDING = "pending"
    SCHEDULED = "scheduled"
    CALLING = "calling"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PARTIAL = "partial"  # hung up after answering some questions
    ABANDONED = "abandoned"  # a person picked up but answered nothing
    OPTED_OUT = "opted_out"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELED = "canceled"
    SUPPRESSED = "suppressed"  # a dialing rule said no; the reason is kept
    # An in-call survey's request, waiting for the customer to be transferred to the
    # survey number (dialer.in_call); never called back unless the survey says so.
    AWAITING_TRANSFER = "awaiting_transfer"
    # An SMS survey (sms/): its first text went out, no reply has come yet. The first
    # reply moves it to in_progress, like a call picked up.
    TEXTING = "texting"
    # An SMS survey that expired with no reply at all (one with answers ends partial).
    NO_REPLY = "no_reply"

    @property
    def is_final_for_survey(self) -> bool:
        """A person was reached (or said no): never call this request again."""
        return self in {
            RequestState.COMPLETED,
            RequestState.PARTIAL,
            RequestState.ABANDONED,
            RequestState.OPTED_OUT,
            RequestState.EXPIRED,
            RequestState.CANCELED,
            RequestState.SUPPRESSED,
            RequestState.NO_REPLY,
        }


class SurveyMode(StrEnum):
    """How the customer is reached: called back later, or handed to the survey in the
    support call itself, when the agent hangs up (dialer.in_call, ivr.inbound)."""

    CALLBACK = "callback"
    IN_CALL = "in_call"


class Channel(StrEnum):
    """How the survey reached the customer: by a call (callback or in-call), by text
    (sms/), or by text after every call went unanswered (the SMS fallback). One request
    takes one path: nobody is called and texted for one support call, except the
    fallback after the calls failed."""

    VOICE = "voice"
    SMS = "sms"
    SMS_FALLBACK = "sms_fallback"

    @property
    def texts(self) -> bool:
        return self is not Channel.VOICE


class Attribution(StrEnum):
    """How an in-call survey knew its support call (None on callbacks: by construction)."""

    TOKEN = "token"  # the transfer carried the token intake issued
    NUMBER = "number"  # the caller's number matched a support call that had just ended
    LATE_EVENT = "late_event"  # the support call's event arrived after the survey began
    NONE = "none"  # neither: the answers count, as "unattributed"


class Suppression(StrEnum):
    """Why a dialing rule (dialer.rules) kept a call from being surveyed; reports count each."""

    NOT_SAMPLED = "not_sampled"
    OPTED_OUT = "opted_out"
    SURVEYED_RECENTLY = "surveyed_recently"
    SURVEY_UNDER_WAY = "survey_under_way"
    CALL_CAP = "call_cap_reached"
    NO_CALLING_WINDOW = "no_calling_window"
    EXPIRED = "validity_expired"


def _enum(enum_cls: type[StrEnum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: readable in SQL, same on both
    # backends, and a new state is a one-line migration rather than an ALTER TYPE.
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
    )


class SurveyVersion(Base):
    """One version of a survey definition file, frozen as it was asked.

    A new row is made whenever the file's content changes; calls pin the version they
    started with, so editing a survey never changes the meaning of stored answers.
    """

    __tablename__ = "survey_versions"
    __table_args__ = (
        UniqueConstraint("survey_name", "version"),
        UniqueConstraint("survey_name", "content_sha256", name="uq_survey_versions_content"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    source_path: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# What a change to a survey kept in the database was (core.survey_store): made in the
# dashboard (created, copied, edited), taken out of or back into service (retired,
# restored), or read from a TOML file (`aftercall surveys import`).
SURVEY_CHANGE_ACTIONS = ("created", "copied", "edited", "retired", "restored", "imported")


class SurveyHead(Base):
    """A survey kept in the database rather than in a file (core.survey_store): the
    version it asks now, and the revision that optimistic concurrency compares.

    The definition itself is the `SurveyVersion` it points at, frozen like a file's:
    requests and answers point at versions, never at this row, so an edit or a
    retirement never changes what a stored answer meant.
    """

    __tablename__ = "managed_surveys"
    __table_args__ = (CheckConstraint("revision >= 1", name="revision_positive"),)

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    # 1 when created, one more for every saved change (core.survey_store guards it).
    revision: Mapped[int] = mapped_column(Integer)
    current_version_id: Mapped[int] = mapped_column(ForeignKey("survey_versions.id"))
    # Set: no new request may use it (the catalog leaves it out); requests already
    # accepted keep their pinned version.
    retired_at: Mapped[datetime | None]
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime]


class SurveyAuditEntry(Base):
    """One saved change to a database survey, by whom and when: its history. One per
    revision; rows are only ever added."""

    __tablename__ = "survey_changes"
    __table_args__ = (
        UniqueConstraint("survey_name", "revision"),
        CheckConstraint(
            "action IN (" + ", ".join(f"'{a}'" for a in SURVEY_CHANGE_ACTIONS) + ")",
            name="action",
        ),
        CheckConstraint("revision >= 1", name="revision_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_name: Mapped[str] = mapped_column(ForeignKey("managed_surveys.name"))
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    # `changed_by` and `changed_at` rather than BY and AT, which are SQL keywords.
    changed_by: Mapped[str] = mapped_column(String(120))
    changed_at: Mapped[datetime]
    # The version the survey asked after this change.
    version_id: Mapped[int] = mapped_column(ForeignKey("survey_versions.id"))
    # What changed, for people: "questions[1].prompt.es, dialing.calling_hours changed".
    summary: Mapped[str] = mapped_column(String(500))


class SurveyRequest(Base):
    """One finished support call that may be surveyed."""

    __tablename__ = "survey_requests"
    __table_args__ = (
        Index("ix_survey_requests_phone_created", "phone", "created_at"),
        Index("ix_survey_requests_state_due", "state", "due_at"),
        # Reports select by the support call's end time, often per agent.
        Index("ix_survey_requests_ended", "call_ended_at"),
        Index("ix_survey_requests_agent_ended", "agent", "call_ended_at"),
        # Requests waiting for a transfer (in-call): matched by the caller's number.
        Index(
            "ix_survey_requests_awaiting_transfer",
            "phone",
            "transfer_expires_at",
            postgresql_where=text("transfer_expires_at IS NOT NULL"),
            sqlite_where=text("transfer_expires_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    source_call_id: Mapped[str] = mapped_column(String(200), unique=True)
    agent: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16), default="en")
    call_ended_at: Mapped[datetime]
    extra: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    survey_name: Mapped[str] = mapped_column(String(100))
    # Pinned at intake (or, failing that, when the call starts): the version asked.
    survey_version_id: Mapped[int | None] = mapped_column(ForeignKey("survey_versions.id"))
    state: Mapped[RequestState] = mapped_column(
        _enum(RequestState, "request_state"), default=RequestState.PENDING
    )
    due_at: Mapped[datetime | None]
    # Calls Twilio accepted for this request; kept by the dialer so that reports need
    # not count attempts.
    calls_placed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Why a dialing rule kept this call from being surveyed (not sampled, opted out, ...).
    suppression_reason: Mapped[str | None] = mapped_column(String(40))
    # The API key that sent it (None: the CLI, a CSV import): only that key may read it
    # back through the intake API.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    # An admin's test call (dialer.trial_call sets it, nothing else does): what makes a
    # request a test call. No report figure counts it (scoring.report.filtered, the
    # rollup's triggers since migration 0009), no alert is sent, no retry placed.
    is_test: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Callback, or in-call (the customer transferred to the survey at the end of the
    # support call): a dimension of every report.
    mode: Mapped[SurveyMode] = mapped_column(
        _enum(SurveyMode, "survey_mode"), default=SurveyMode.CALLBACK, server_default="callback"
    )
    # In-call only: how the survey knew its support call, and until when a transfer (by
    # token or by the caller's number) may still claim this request.
    attribution: Mapped[Attribution | None] = mapped_column(_enum(Attribution, "attribution"))
    transfer_expires_at: Mapped[datetime | None]
    # Voice, SMS, or SMS after unanswered calls: a dimension of every report.
    channel: Mapped[Channel] = mapped_column(
        _enum(Channel, "channel"), default=Channel.VOICE, server_default="voice"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    survey_version: Mapped[SurveyVersion | None] = relationship()
    attempts: Mapped[list[CallAttempt]] = relationship(
        back_populates="request", order_by="CallAttempt.number"
    )
    answers: Mapped[list[Answer]] = relationship(back_populates="request", order_by="Answer.id")


# Twilio statuses of a call not yet over: what the dialer's concurrency limit counts and
# settlement watches. Few rows at any time, among every call ever placed, hence the
# partial index below, which those queries' `status IN (...)` lets the database use.
IN_FLIGHT_STATUSES = ("queued", "initiated", "ringing", "in-progress")
_IN_FLIGHT_SQL = "status IN ('queued', 'initiated', 'ringing', 'in-progress')"


class CallAttempt(Base):
    """One call of a survey request: placed by the dialer (outbound), or the customer's
    transfer into an in-call survey (inbound, ivr.inbound), which the dialer's pacing,
    concurrency limit and attempt count never count."""

    __tablename__ = "call_attempts"
    __table_args__ = (
        UniqueConstraint("request_id", "number"),
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint("direction IN ('outbound', 'inbound')", name="direction"),
        Index(
            "ix_call_attempts_in_flight",
            "created_at",
            postgresql_where=text(_IN_FLIGHT_SQL),
            sqlite_where=text(_IN_FLIGHT_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("survey_requests.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The latest Twilio CallStatus (queued, initiated, ringing, in-progress, completed,
    # busy, no-answer, failed, canceled).
    status: Mapped[str] = mapped_column(String(20), default="queued")
    answered_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None]
    error_code: Mapped[str | None] = mapped_column(String(16))
    sip_response_code: Mapped[int | None]
    direction: Mapped[str] = mapped_column(
        String(16), default="outbound", server_default="outbound"
    )

    request: Mapped[SurveyRequest] = relationship(back_populates="attempts")
    events: Mapped[list[CallEvent]] = relationship(
        back_populates="attempt", order_by="CallEvent.id"
    )


class CallEvent(Base):
    """A status callback as Twilio delivered it: the attempt's status history."""

    __tablename__ = "call_events"
    # Twilio may deliver the same callback twice; each status is kept once per attempt.
    __table_args__ = (UniqueConstraint("attempt_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("call_attempts.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    sequence_number: Mapped[int | None]
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)

    attempt: Mapped[CallAttempt] = relationship(back_populates="events")


class Answer(Base):
    """The customer's answer to one question, committed the moment it arrived."""

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("request_id", "question_key"),
        # A scale answer, a recorded comment, or a comment typed in a text (transcript).
        CheckConstraint(
            "value IS NOT NULL OR recording_url IS NOT NULL OR transcript IS NOT NULL",
            name="value_or_recording",
        ),
        # Given in a call (an attempt) or in a text conversation.
        CheckConstraint(
            "attempt_id IS NOT NULL OR conversation_id IS NOT NULL", name="attempt_or_conversation"
        ),
        Index("ix_answers_kind_value", "kind", "value"),
        # Lets report queries read scores straight from the index, request by request.
        Index("ix_answers_request_kind_value", "request_id", "kind", "value"),
        # Reports over a period, overall and per agent, as index-only scans (is_test
        # too: every report leaves test calls out, and a column outside the index would
        # send each row to the table).
        Index("ix_answers_report", "call_ended_at", "agent", "kind", "value", "is_test"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("survey_requests.id"))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("call_attempts.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("sms_conversations.id"), index=True
    )
    # Copied from the request when the answer is stored (they never change), so that
    # reports read one table: see the `before_insert` hook below.
    call_ended_at: Mapped[datetime | None]
    agent: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    survey_name: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(16))
    is_test: Mapped[bool] = mapped_column(default=False, server_default=false())
    mode: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))  # None: before SMS, voice
    survey_version_id: Mapped[int] = mapped_column(ForeignKey("survey_versions.id"))
    question_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[int | None]
    keys: Mapped[str] = mapped_column(String(64), default="")  # the raw keys pressed
    # How the answer was given: "keys", "speech" or "text" (an SMS reply; None: a recorded comment, or an answer
    # stored before spoken answers existed, all keyed). A spoken answer keeps what the
    # recogniser heard in `transcript` and its confidence (0-1; None if Twilio sent none).
    input: Mapped[str | None] = mapped_column(String(8))
    confidence: Mapped[float | None] = mapped_column(Float)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_seconds: Mapped[int | None]
    transcript: Mapped[str | None] = mapped_column(Text)
    transcript_status: Mapped[str | None] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[SurveyRequest] = relationship(back_populates="answers")


class OptOut(Base):
    """A number on the do-not-call list."""

    __tablename__ = "opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # How it arrived: "keypad" or "speech" during a survey, "sms" (STOP or its kin in a
    # text), "api", "cli", "import".
    source: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("survey_requests.id"))


class SmsConversation(Base):
    """A survey by text (sms/): one per request, asking one question per message.

    `question_key` and `try_number` say what the customer's next reply answers; a reply
    after `expires_at`, or once `closed_at` is set, answers nothing.
    """

    __tablename__ = "sms_conversations"
    __table_args__ = (
        # The sender's open conversations, newest first: what an inbound text answers.
        Index("ix_sms_conversations_phone_open", "phone", "closed_at"),
        Index("ix_sms_conversations_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("survey_requests.id"), unique=True)
    phone: Mapped[str] = mapped_column(String(20))  # the customer, E.164
    sender: Mapped[str] = mapped_column(String(20))  # the survey number texts come from
    survey_version_id: Mapped[int] = mapped_column(ForeignKey("survey_versions.id"))
    language: Mapped[str] = mapped_column(String(16))
    question_key: Mapped[str | None] = mapped_column(String(64))
    try_number: Mapped[int] = mapped_column(Integer, default=1)
    expires_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # Why it closed: completed, partial, opted_out, expired, undelivered.
    outcome: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsMessage(Base):
    """One text, either way: what aftercall sent (with Twilio's delivery status, from
    its status callbacks) and every text a customer sent, kept with what it meant, so
    that nothing a customer wrote is lost, whether or not it answered anything."""

    __tablename__ = "sms_messages"
    __table_args__ = (
        CheckConstraint("direction IN ('outbound', 'inbound')", name="direction"),
        Index("ix_sms_messages_phone_created", "phone", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("sms_conversations.id"), index=True
    )
    direction: Mapped[str] = mapped_column(String(16))
    # Twilio's MessageSid: set when Twilio accepted an outbound text; an inbound one's is
    # unique, so a webhook delivered twice is recorded once.
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone: Mapped[str] = mapped_column(String(64))  # the customer, as Twilio wrote it
    body: Mapped[str] = mapped_column(Text)
    # Outbound: pending (not yet handed to Twilio), then Twilio's status (queued, sent,
    # delivered, undelivered, failed), or refused when Twilio's API said no. Inbound:
    # received.
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(16))
    # Outbound: why it was sent (question, reask, thanks, help, opted_out, closed).
    # Inbound: what it meant (answer, not_understood, opt_out, opt_in, help, expired,
    # unknown_sender, after_close).
    purpose: Mapped[str] = mapped_column(String(20))
    question_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContactLeg(Base):
    """One leg of a customer's conversation, as a contact-center platform reported it (an
    Amazon Connect contact record, a Twilio Flex reservation): kept until the conversation's last leg is known, so
    that the conversation becomes one survey request, after its end, rating its last
    agent (dialer.receivers.conversations). A transferred call has a leg per agent, and
    the legs arrive in any order and more than once."""

    __tablename__ = "contact_legs"
    __table_args__ = (
        UniqueConstraint("platform", "leg_id", name="uq_contact_legs_leg"),
        Index("ix_contact_legs_conversation", "platform", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    # The first leg's id (Connect: InitialContactId, or the ContactId of the first leg).
    conversation_id: Mapped[str] = mapped_column(String(256))
    leg_id: Mapped[str] = mapped_column(String(256))
    previous_leg_id: Mapped[str | None] = mapped_column(String(256))
    next_leg_id: Mapped[str | None] = mapped_column(String(256))
    channel: Mapped[str | None] = mapped_column(String(20))
    initiation_method: Mapped[str | None] = mapped_column(String(40))
    # The number on the leg's customer side, as the platform wrote it (checked at intake).
    phone: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    # The customer's language and the survey, where the platform's event says them.
    language: Mapped[str | None] = mapped_column(String(16))
    survey: Mapped[str | None] = mapped_column(String(100))
    agent_connected_at: Mapped[datetime | None]
    after_contact_work_at: Mapped[datetime | None]
    transfer_completed_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # The platform's version of the leg (Connect: LastUpdateTimestamp, TaskRouter: the
    # event's time): a newer copy's values win, an older one only fills what is unknown.
    updated_at: Mapped[datetime | None]
    # The platform's own word that the conversation is over (a TaskRouter task event).
    is_end: Mapped[bool] = mapped_column(default=False, server_default=false())
    # What the survey request's metadata will carry from this leg (a Flex task's call_sid).
    call_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# What a key may do (core.apikeys): stored as its scopes in a fixed order, space
# separated; `reports` and `reports:full` (numbers and recordings) exclude each other.
API_KEY_SCOPE_SETS = (
    "intake",
    "reports",
    "reports:full",
    "intake reports",
    "intake reports:full",
    # A CRM mirroring follow-ups (scoring.follow_ups): read and update them.
    "follow-ups",
    "intake follow-ups",
    "reports follow-ups",
    "reports:full follow-ups",
    "intake reports follow-ups",
    "intake reports:full follow-ups",
)


class ApiKey(Base):
    """A contact-center system allowed to use the API. Only a hash of the key is kept."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "scopes IN (" + ", ".join(f"'{s}'" for s in API_KEY_SCOPE_SETS) + ")", name="scopes"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # sha256 of the full key: keys are long random strings, so a fast hash is enough
    # and lookups stay a single indexed equality.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings and logs
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    # No default: a key without scopes must fail to insert, never get a wide one.
    scopes: Mapped[str] = mapped_column(String(64))


USER_ROLES = ("admin", "supervisor", "analyst")


class User(Base):
    """A person who signs in to the dashboard (admins, supervisors, analysts)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in USER_ROLES) + ")", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # What the user sees of customers (core.users): "admin" and "supervisor" full
    # phone numbers and recordings, "analyst" masked numbers and no recordings.
    role: Mapped[str] = mapped_column(String(20), default="analyst")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]


# -- the report rollup ----------------------------------------------------------------
# Daily figures per agent/queue/team/survey/language/mode/channel in the report time
# zone, so that a report over months reads thousands of rows instead of millions.
# Triggers on survey_requests and answers keep them current (migrations 0005 and 0018 on
# PostgreSQL, 0017 and 0018 on SQLite); scoring.rollup reads, compacts and rebuilds them.

NPS_COUNTERS = tuple(f"nps_{value}" for value in range(0, 11))
CSAT_COUNTERS = tuple(f"csat_{value}" for value in range(1, 6))
CES_COUNTERS = tuple(f"ces_{value}" for value in range(1, 8))
FUNNEL_COUNTERS = ("received", "placed", "calls_placed", "answered", "reached", "completed",
                   "partial", "opted_out", "attempts_for_completed")  # fmt: skip
# One column per Suppression value (a test keeps the two lists equal).
SUPPRESSION_REASONS = ("not_sampled", "opted_out", "surveyed_recently", "survey_under_way",
                       "call_cap_reached", "no_calling_window", "validity_expired")  # fmt: skip
SUPPRESSION_COUNTERS = tuple(f"suppressed_{reason}" for reason in SUPPRESSION_REASONS)
# The counters a report row is made of (scoring.report).
ROLLUP_COUNTERS = (*NPS_COUNTERS, *CSAT_COUNTERS, *CES_COUNTERS, *FUNNEL_COUNTERS,
                   *SUPPRESSION_COUNTERS)  # fmt: skip
# The spoken share's (scoring.report.spoken_share, migration 0018): answers with a value
# given in a call (not in a text), and those of them said aloud.
INPUT_COUNTERS = ("call_answers", "spoken_answers")
# Every counter a rollup row stores, as compaction and rebuilds add them up.
STORED_COUNTERS = (*ROLLUP_COUNTERS, *INPUT_COUNTERS)
# The survey mode and channel as text (SurveyMode, Channel values; an answer's NULL
# read as callback and voice, as scoring.report reads it).
ROLLUP_KEYS = ("day", "agent", "queue", "team", "survey_name", "language", "mode", "channel")


def _rollup_table(name: str, *extra: Any, per_agent: bool = True) -> Table:
    return Table(
        name,
        Base.metadata,
        Column("day", Date, nullable=False),
        *([Column("agent", String(200))] if per_agent else []),
        Column("queue", String(200)),
        Column("team", String(200)),
        Column("survey_name", String(100)),
        Column("language", String(16)),
        *(Column(name, Integer, nullable=False, server_default="0") for name in ROLLUP_COUNTERS),
        Column("mode", String(16)),
        Column("channel", String(16)),
        *(Column(name, Integer, nullable=False, server_default="0") for name in INPUT_COUNTERS),
        *extra,
    )


# One row per day and key, as compaction leaves them.
report_daily = _rollup_table("report_daily", Index("ix_report_daily_day", "day"))
# The same without the agent (all agents of a queue/team/survey/language together),
# rewritten from report_daily for each day compaction touches: the trend, headline and
# funnel of a contact center read a few hundred rows a day instead of one per agent.
report_daily_teams = _rollup_table(
    "report_daily_teams", Index("ix_report_daily_teams_day", "day"), per_agent=False
)
# What the triggers append as requests and answers change (+1 for the new row, -1 for
# the old), folded into report_daily by scoring.rollup.compact every minute. Append-only,
# so concurrent writers never wait for each other on a shared counter row.
report_daily_delta = _rollup_table("report_daily_delta")
# SQLite's days (migration 0017): each local day's start in UTC in the rollup's time
# zone, with its ISO week and month labels, filled by scoring.rollup.switch_on. SQLite
# cannot convert time zones; PostgreSQL can, and leaves this empty.
report_rollup_days = Table(
    "report_rollup_days",
    Base.metadata,
    Column("day", Date, primary_key=True),
    Column("starts", UTCDateTime(), nullable=False),
    Column("week", String(8), nullable=False),
    Column("month", String(7), nullable=False),
    Index("ix_report_rollup_days_starts", "starts", unique=True),
)


class ReportRollup(Base):
    """The rollup's one setting: the time zone its days are in (empty: rollup off)."""

    __tablename__ = "report_rollup"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    rebuilt_at: Mapped[datetime | None]


REPORT_FIELDS = (
    "call_ended_at", "agent", "queue", "team", "survey_name", "language", "is_test", "mode",
    "channel",
)  # fmt: skip


@event.listens_for(Answer, "before_insert")
def _copy_report_fields(_mapper: Any, connection: Any, answer: Answer) -> None:
    """Every answer carries its request's report fields, whatever code path stores it."""
    if answer.call_ended_at is not None:
        return
    row = connection.execute(
        select(*(getattr(SurveyRequest, name) for name in REPORT_FIELDS)).where(
            SurveyRequest.id == answer.request_id
        )
    ).one()
    for name, value in zip(REPORT_FIELDS, row, strict=True):
        setattr(answer, name, value)


# -- follow-ups: every unhappy customer, owned by someone until it is done -----------------

FOLLOW_UP_STATUSES = ("new", "contacted", "resolved", "wont_fix")


class FollowUp(Base):
    """A survey answer set that met its survey's follow-up rule (scoring.follow_ups):
    who owns it, where it stands, and until when it should be done.

    The support call's report fields are copied in (like an answer's), so the page and
    the figures filter by team, agent, queue and survey without a join, and a test
    call's follow-up counts in no figure. One per request, whatever delivers it again.
    """

    __tablename__ = "follow_ups"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in FOLLOW_UP_STATUSES) + ")",
            name="status",
        ),
        Index("ix_follow_ups_open_due", "status", "due_at"),
        Index("ix_follow_ups_team_status", "team", "status", "due_at"),
        Index("ix_follow_ups_owner_status", "owner", "status", "due_at"),
        Index("ix_follow_ups_opened", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("survey_requests.id"), unique=True)
    survey_name: Mapped[str] = mapped_column(String(100))
    agent: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    is_test: Mapped[bool] = mapped_column(default=False, server_default=false())
    # What the rule found: "nps 3 <= 6", "comment", "opted out after csat 1".
    reason: Mapped[str] = mapped_column(String(200))
    # A dashboard username, or None: unassigned.
    owner: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime]
    first_contacted_at: Mapped[datetime | None]
    # When it was resolved or given up on (won't fix); None while open.
    closed_at: Mapped[datetime | None]
    # The writer's own time of the last change that won (last writer wins by it: a CRM's
    # update carries its time, a dashboard change the time it was made).
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(120))


class FollowUpNote(Base):
    """A note on a follow-up: what the owner did, said or learned."""

    __tablename__ = "follow_up_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    follow_up_id: Mapped[int] = mapped_column(ForeignKey("follow_ups.id"), index=True)
    author: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FollowUpChange(Base):
    """Who changed what on a follow-up, and when: its history. An update older than the
    change already applied (a CRM's late echo) is kept too, marked not applied."""

    __tablename__ = "follow_up_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    follow_up_id: Mapped[int] = mapped_column(ForeignKey("follow_ups.id"), index=True)
    field: Mapped[str] = mapped_column(String(20))  # opened, owner, status, note
    old_value: Mapped[str | None] = mapped_column(String(200))
    new_value: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(120))  # a username, "api:<key>", "system"
    source: Mapped[str] = mapped_column(String(16))  # dashboard, api, system
    changed_at: Mapped[datetime]  # the writer's time
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied: Mapped[bool] = mapped_column(default=True, server_default=true())


class UserTeam(Base):
    """A team a dashboard user leads: a supervisor sees the follow-ups of their teams."""

    __tablename__ = "user_teams"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    team: Mapped[str] = mapped_column(String(200), primary_key=True)


# -- the alert outbox: what the answer webhooks leave for scoring's alert jobs -----------


class AlertOutbox(Base):
    """A detractor alert owed for a survey request: written in the same transaction (on
    PostgreSQL, the same statement) as the answer that called for it (core.events), so
    that it is never lost once the answer is stored, whatever Redis is doing. The
    worker's drain (scoring.alerts.queue_due_alerts) puts the alert's job on the
    `alerts` queue and notes when. One per request: a second detractor answer (CSAT
    after NPS, a redelivery, a text after a call) finds the row there and adds nothing.
    """

    __tablename__ = "alert_outbox"
    __table_args__ = (
        # What the drain reads every few seconds: the rows not queued yet, oldest first.
        Index(
            "ix_alert_outbox_due",
            "id",
            postgresql_where=text("queued_at IS NULL"),
            sqlite_where=text("queued_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("survey_requests.id"), unique=True)
    created_at: Mapped[datetime]
    # When the drain queued the alert's job (None: not yet; Redis may have been down).
    queued_at: Mapped[datetime | None]
