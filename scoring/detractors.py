"""The detractor list: unhappy customers, newest first, for a supervisor to follow up.

A detractor is a request with NPS <= 6 or CSAT <= 2, never an admin's test call (the
list selects through scoring.report.filtered, like every figure). Each entry carries
what a follow-up needs: who handled the call, when, every answer, and the recorded
comment's transcript and recording link. Two queries whatever the page size: the page
of requests (filtered and ordered by the database), then their answers.

Not every reader may see who the customer is. `shown_to(entry, contact)` is the one place
that decides what a reader gets: the dashboard page, its CSV download and the report API
all pass their entries through it, with the `Contact` that the signed-in user's role
(core.users) or the API key's scope (core.apikeys) allows. `detractors()` itself
returns what the database holds, for code that runs with full access (alerts, benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from core.masking import Contact, hide_digits, mask_phone
from core.models import Answer, SurveyRequest
from scoring.nps import DETRACTOR_MAX
from scoring.report import ReportQuery, filtered

CSAT_DETRACTOR_MAX = 2
MAX_PAGE = 500
# OFFSET makes the database read and drop every row it skips: deeper than this, narrow
# the period instead of paging further.
MAX_OFFSET = 10_000_000


@dataclass
class Detractor:
    request_id: int
    phone: str
    agent: str | None
    queue: str | None
    team: str | None
    call_ended_at: datetime
    survey: str
    answers: dict[str, int | None] = field(default_factory=dict)
    comment: str | None = None  # the transcript of a recorded answer
    recording_url: str | None = None

    @property
    def nps(self) -> int | None:
        return self.answers.get("nps")

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "phone": self.phone,
            "agent": self.agent,
            "queue": self.queue,
            "team": self.team,
            "call_ended_at": self.call_ended_at.isoformat().replace("+00:00", "Z"),
            "survey": self.survey,
            "answers": self.answers,
            "comment": self.comment,
            "recording_url": self.recording_url,
        }


def shown_to(entry: Detractor, contact: Contact) -> Detractor:
    """The entry as a reader with `contact` may see it: every reader of the detractor
    list (dashboard page, CSV download, report API) gets its entries from here."""
    if contact is Contact.FULL:
        return entry
    return replace(
        entry,
        phone=mask_phone(entry.phone) or "",
        comment=hide_digits(entry.comment),
        recording_url=None,
    )


def is_detractor_answer(kind: str, value: int | None) -> bool:
    if value is None:
        return False
    return (kind == "nps" and value <= DETRACTOR_MAX) or (
        kind == "csat" and value <= CSAT_DETRACTOR_MAX
    )


def detractors(
    session: Session, query: ReportQuery, *, limit: int = 50, offset: int = 0
) -> list[Detractor]:
    limit = max(1, min(limit, MAX_PAGE))
    unhappy = exists().where(
        Answer.request_id == SurveyRequest.id,
        or_(
            and_(Answer.kind == "nps", Answer.value <= DETRACTOR_MAX),
            and_(Answer.kind == "csat", Answer.value <= CSAT_DETRACTOR_MAX),
        ),
    )
    page = session.scalars(
        filtered(select(SurveyRequest).where(unhappy), query)
        .order_by(SurveyRequest.call_ended_at.desc(), SurveyRequest.id.desc())
        .limit(limit)
        .offset(max(offset, 0))
    ).all()
    entries = {
        r.id: Detractor(
            request_id=r.id,
            phone=r.phone,
            agent=r.agent,
            queue=r.queue,
            team=r.team,
            call_ended_at=r.call_ended_at,
            survey=r.survey_name,
        )
        for r in page
    }
    if entries:
        answers = session.scalars(
            select(Answer).where(Answer.request_id.in_(entries)).order_by(Answer.id)
        )
        for answer in answers:
            entry = entries[answer.request_id]
            if answer.kind == "comment":
                entry.comment = answer.transcript
                entry.recording_url = answer.recording_url
            else:
                entry.answers[answer.question_key] = answer.value
    return list(entries.values())
