"""The detractor list: unhappy customers, newest first, for a supervisor to follow up.

A detractor is a request with NPS <= 6 or CSAT <= 2, never an admin's test call (the
list selects through scoring.report.filtered, like every figure). Each entry carries
what a follow-up needs: who handled the call, when, every answer, and the recorded
comment's transcript and recording link. Two queries whatever the page size: the page
of requests (filtered and ordered by the database), then their answers.

Not every reader may see who the customer is. `shown_to(entry, contact)` is the one place
that decides what a reader gets: the dashboard page, its CSV download and the report API
all pass their entries through it, with the `Contact` that the signed-in user's role
(scoring.users) or the API key's scope (dialer.apikeys) allows. `detractors()` itself
returns what the database holds, for code that runs with full access (alerts, benchmarks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import phonenumbers
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from aftercall.models import Answer, SurveyRequest
from scoring.nps import DETRACTOR_MAX
from scoring.report import ReportQuery, filtered

CSAT_DETRACTOR_MAX = 2
MAX_PAGE = 500
MASK = "•"
# A masked number shows its country code, its area code and its last two digits only
# while at least this many digits stay hidden: "+1 415 ••• ••23" hides five, and a
# short number (a Berlin line, a short code) shows less rather than nearly all of itself.
MIN_HIDDEN_DIGITS = 5
SHOWN_LAST_DIGITS = 2
# Four or more digits in a row, spaces and punctuation between them allowed: a phone,
# card or account number read out in a comment. "waited 45 minutes" stays readable.
DIGIT_RUN = re.compile(r"\d(?:[\s().,/-]{0,2}\d){3,}")


class Contact(StrEnum):
    """How much of the customer a reader of the detractor list may see."""

    # The number, the recording and the transcript: what calling a customer back needs.
    FULL = "full"
    # Scores without the person: country and area code plus the last two digits of the
    # number, no recording (a voice identifies), digit runs in transcripts hidden.
    MASKED = "masked"


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


def mask_phone(phone: str | None) -> str | None:
    """A phone number with most digits hidden: `+14155550123` -> `+1 415 ••• ••23`.

    The country calling code is always shown; the area code (where the country has
    geographic ones) and the last two digits only while `MIN_HIDDEN_DIGITS` stay hidden.
    Anything that does not parse as a possible number keeps a leading `+` and at most its
    last two digits. Text without a digit (the retention purge's marker) is no number
    and comes back as it is.
    """
    if phone is None:
        return None
    if not any(ch.isdigit() for ch in phone):
        return phone
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        digits = "".join(ch for ch in phone if ch.isdigit())
        shown = SHOWN_LAST_DIGITS if len(digits) - SHOWN_LAST_DIGITS >= MIN_HIDDEN_DIGITS else 0
        masked = MASK * (len(digits) - shown) + digits[len(digits) - shown :]
        return ("+" if phone.lstrip().startswith("+") else "") + masked
    national = phonenumbers.national_significant_number(number)
    last = SHOWN_LAST_DIGITS if len(national) - SHOWN_LAST_DIGITS >= MIN_HIDDEN_DIGITS else 0
    area = phonenumbers.length_of_geographical_area_code(number)
    if len(national) - last - area < MIN_HIDDEN_DIGITS:
        area = 0
    shown = [i < area or i >= len(national) - last for i in range(len(national))]
    # The international format groups the digits as the country writes them; its
    # separators (spaces, hyphens) all become spaces.
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    prefix = f"+{number.country_code}"
    out, index = [prefix], 0
    for ch in formatted.removeprefix(prefix):
        if ch.isdigit() and index < len(national):
            out.append(ch if shown[index] else MASK)
            index += 1
        elif out[-1] != " ":
            out.append(" ")
    return "".join(out).strip()


def hide_digits(text: str | None) -> str | None:
    """Free text with every run of four or more digits hidden (`call me on •••-••••`).

    What a customer says in a recorded comment is for reading, but a number they read
    out (their phone, an account, a card) is not. Numbers spoken as words ("four one
    five") are not caught; see docs/dashboard.md.
    """
    if text is None:
        return None
    return DIGIT_RUN.sub(lambda run: re.sub(r"\d", MASK, run.group()), text)


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
