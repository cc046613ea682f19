"""Retention: forgetting customers' personal data after a while, keeping the figures.

`purge(session, older_than)` anonymises every survey request whose support call ended
before the cutoff: the phone number is replaced by a marker, free-form metadata (which
contact centers fill with names and ticket texts) is emptied, and recorded comments lose
their transcript and recording link. Scores, states, agents, queues and times stay, so
every report over the purged period gives the same figures as before.

The audio itself lives in the Twilio account: `delete_recordings` deletes, through
Twilio's API, the recording of every comment whose request was anonymised, and forgets
its RecordingSid only once Twilio confirmed (deleted, or already gone), so a run that
fails half way is finished by the next one. `aftercall purge` and `aftercall customer
forget` do both; with RETENTION_DAYS set, `rq cron` runs the purge daily.

The legs of customers' conversations that the platforms' receivers keep until a
conversation is over (`contact_legs`: numbers, agents, times) are deleted, not
anonymised: they are working storage, and a conversation older than the cutoff will not
be surveyed any more.

What it keeps on purpose: the do-not-call list (a customer who opted out must stay
opted out; that record is the reason to keep the number), and Twilio's CallSids.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from requests.exceptions import RequestException
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from core.models import (
    Answer,
    ContactLeg,
    FollowUp,
    FollowUpChange,
    FollowUpNote,
    OptOut,
    SmsConversation,
    SmsMessage,
    SurveyRequest,
)

log = logging.getLogger(__name__)
PURGED_PHONE = "purged"
_AGE = re.compile(r"^\s*(\d+)\s*([dw])\s*$")


@dataclass(frozen=True)
class PurgeReport:
    requests: int
    comments: int
    legs: int = 0  # conversation legs deleted (contact_legs)


@dataclass(frozen=True)
class RecordingCleanup:
    deleted: int  # Twilio deleted them now
    already_gone: int  # Twilio no longer had them (deleted by hand, or a previous run)
    failed: int  # kept, for the next run


def delete_recordings(session: Session, twilio: Client) -> RecordingCleanup:
    """Delete in the Twilio account the recordings of anonymised requests' comments."""
    pending = session.scalars(
        select(Answer)
        .join(SurveyRequest, SurveyRequest.id == Answer.request_id)
        .where(SurveyRequest.phone == PURGED_PHONE, Answer.recording_sid.is_not(None))
        .order_by(Answer.id)
    ).all()
    deleted = gone = failed = 0
    for answer in pending:
        try:
            twilio.recordings(answer.recording_sid).delete()
            deleted += 1
        except TwilioRestException as exc:
            if exc.status != 404:
                log.warning("recording of answer %s not deleted: %s", answer.id, exc.msg)
                failed += 1
                continue
            gone += 1
        except (TwilioException, RequestException) as exc:
            log.warning("recording of answer %s not deleted: %s", answer.id, exc)
            failed += 1
            continue
        answer.recording_sid = None
    session.flush()
    return RecordingCleanup(deleted, gone, failed)


def parse_age(text: str) -> timedelta:
    """'180d' or '26w' -> a timedelta; ValueError with a clear message otherwise."""
    match = _AGE.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"expected an age like 180d or 26w, got {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    return timedelta(days=count * (7 if unit == "w" else 1))


def purge(session: Session, before: datetime, *, dry_run: bool = False) -> PurgeReport:
    """Anonymise the requests whose support call ended before `before`, and delete the
    conversation legs kept since before then."""
    report = _anonymise(session, SurveyRequest.call_ended_at < before, dry_run=dry_run)
    # Texts of no survey (a stranger's, a HELP reply) go by their own age.
    _blank_texts(
        session,
        SmsMessage.conversation_id.is_(None) & (SmsMessage.created_at < before),
        dry_run=dry_run,
    )
    old = func.coalesce(ContactLeg.ended_at, ContactLeg.received_at) < before
    return replace(report, legs=_delete_legs(session, old, dry_run=dry_run))


def forget_customer(session: Session, phone: str, *, dry_run: bool = False) -> PurgeReport:
    """A data subject's erasure request: anonymise every survey request for `phone`.

    The do-not-call entry stays (keeping someone from being called again is the one use
    of their number the law asks us to keep making).
    """
    report = _anonymise(session, SurveyRequest.phone == phone, dry_run=dry_run)
    _blank_texts(session, SmsMessage.phone == phone, dry_run=dry_run)
    theirs = ContactLeg.conversation_id.in_(
        select(ContactLeg.conversation_id).where(ContactLeg.phone == phone)
    )
    return replace(report, legs=_delete_legs(session, theirs, dry_run=dry_run))


def _delete_legs(session: Session, which: ColumnElement[bool], *, dry_run: bool) -> int:
    """Delete the conversation legs `which` selects; how many (or would be, dry run)."""
    count = session.scalar(select(func.count(ContactLeg.id)).where(which)) or 0
    if count and not dry_run:
        session.execute(
            delete(ContactLeg).where(which).execution_options(synchronize_session=False)
        )
    return count


def customer_data(session: Session, phone: str) -> dict[str, Any]:
    """Everything aftercall holds about one phone number (a data subject's access request)."""
    requests = session.scalars(
        select(SurveyRequest).where(SurveyRequest.phone == phone).order_by(SurveyRequest.id)
    ).all()
    opt_out = session.scalar(select(OptOut).where(OptOut.phone == phone))
    legs = session.scalars(
        select(ContactLeg).where(ContactLeg.phone == phone).order_by(ContactLeg.id)
    ).all()
    return {
        "phone": phone,
        "opted_out": None
        if opt_out is None
        else {"at": opt_out.created_at.isoformat(), "how": opt_out.source},
        "survey_requests": [
            {
                "id": r.id,
                "source_call_id": r.source_call_id,
                "agent": r.agent,
                "queue": r.queue,
                "team": r.team,
                "language": r.language,
                "call_ended_at": r.call_ended_at.isoformat(),
                "survey": r.survey_name,
                "state": r.state.value,
                "metadata": r.extra,
                "calls": [
                    {
                        "at": a.created_at.isoformat(),
                        "status": a.status,
                        "seconds": a.duration_seconds,
                    }
                    for a in r.attempts
                ],
                "answers": [
                    {
                        "question": a.question_key,
                        "value": a.value,
                        "keys": a.keys,
                        "transcript": a.transcript,
                        "recording_url": a.recording_url,
                        "at": a.received_at.isoformat(),
                    }
                    for a in r.answers
                ],
            }
            for r in requests
        ],
        # Follow-ups of their surveys, with the notes their owners wrote.
        "follow_ups": [
            {
                "request_id": f.request_id,
                "status": f.status,
                "owner": f.owner,
                "opened_at": f.opened_at.isoformat(),
                "notes": [
                    {"at": n.created_at.isoformat(), "author": n.author, "body": n.body}
                    for n in session.scalars(
                        select(FollowUpNote)
                        .where(FollowUpNote.follow_up_id == f.id)
                        .order_by(FollowUpNote.id)
                    )
                ],
            }
            for f in session.scalars(
                select(FollowUp)
                .where(FollowUp.request_id.in_([r.id for r in requests]))
                .order_by(FollowUp.id)
            )
        ],
        # Every text either way: survey questions, replies, keywords.
        "texts": [
            {
                "at": t.created_at.isoformat(),
                "direction": t.direction,
                "body": t.body,
                "status": t.status,
                "meaning": t.purpose,
            }
            for t in session.scalars(
                select(SmsMessage).where(SmsMessage.phone == phone).order_by(SmsMessage.id)
            )
        ],
        # Legs of conversations a platform reported, kept until the conversation is over.
        "conversation_legs": [
            {
                "platform": leg.platform,
                "conversation": leg.conversation_id,
                "leg": leg.leg_id,
                "agent": leg.agent,
                "ended_at": leg.ended_at.isoformat() if leg.ended_at else None,
            }
            for leg in legs
        ],
    }


def _anonymise(session: Session, which: ColumnElement[bool], *, dry_run: bool) -> PurgeReport:
    old = select(SurveyRequest.id).where(which, SurveyRequest.phone != PURGED_PHONE)
    requests = session.scalar(select(func.count()).select_from(old.subquery()))
    # Comments, recorded or typed (a typed or spoken score's transcript is no comment).
    comments = session.scalar(
        select(func.count(Answer.id)).where(
            Answer.request_id.in_(old),
            Answer.kind == "comment",
            (Answer.transcript.is_not(None)) | (Answer.recording_url != ""),
        )
    )
    if dry_run:
        return PurgeReport(requests, comments)
    # Comments first: they are found through the requests not yet marked purged.
    session.execute(
        update(Answer)
        .where(Answer.request_id.in_(old))
        # An empty link, not NULL: a comment answer must keep saying it was a recording.
        .values(transcript=None, recording_url="")
        .execution_options(synchronize_session=False)
    )
    # Their follow-ups' notes (what the owner wrote about the customer), in the notes and
    # in the history that quotes them; the follow-ups themselves stay, for the figures.
    follow_ups = select(FollowUp.id).where(FollowUp.request_id.in_(old))
    session.execute(
        update(FollowUpNote)
        .where(FollowUpNote.follow_up_id.in_(follow_ups))
        .values(body="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(FollowUpChange)
        .where(FollowUpChange.follow_up_id.in_(follow_ups), FollowUpChange.field == "note")
        .values(new_value="")
        .execution_options(synchronize_session=False)
    )
    # The texts of those surveys: what the customer wrote, and their number.
    conversations = select(SmsConversation.id).where(SmsConversation.request_id.in_(old))
    _blank_texts(session, SmsMessage.conversation_id.in_(conversations), dry_run=False)
    session.execute(
        update(SmsConversation)
        .where(SmsConversation.request_id.in_(old))
        .values(phone=PURGED_PHONE)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(SurveyRequest)
        .where(which, SurveyRequest.phone != PURGED_PHONE)
        # updated_at kept: an anonymised request is no newly ended survey (the
        # follow-up sweep, scoring.follow_ups, looks at requests by their last change).
        .values(phone=PURGED_PHONE, extra={}, updated_at=SurveyRequest.updated_at)
        .execution_options(synchronize_session=False)
    )
    return PurgeReport(requests, comments)


def _blank_texts(session: Session, which: ColumnElement[bool], *, dry_run: bool) -> None:
    """Texts either way keep their status (delivery figures) but lose the number and
    what was written."""
    if dry_run:
        return
    session.execute(
        update(SmsMessage)
        .where(which, SmsMessage.phone != PURGED_PHONE)
        .values(phone=PURGED_PHONE, body="")
        .execution_options(synchronize_session=False)
    )


def purge_expired(session: Session, twilio: Client | None, now: datetime, days: int) -> str:
    """The daily retention run: anonymise what is older than `days`, then delete the
    recordings at Twilio (any a previous run could not delete, too)."""
    report = purge(session, now - timedelta(days=days))
    note = (
        f"anonymised {report.requests} survey requests, {report.comments} comments;"
        f" deleted {report.legs} conversation legs"
    )
    if twilio is not None:
        cleanup = delete_recordings(session, twilio)
        note += (
            f"; recordings: {cleanup.deleted} deleted, {cleanup.already_gone} already gone,"
            f" {cleanup.failed} failed"
        )
    return note
