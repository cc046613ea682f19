"""Follow-ups: every answer set a survey's rule flags becomes a case that someone owns
until it is done (issue 18, "close the loop").

- `flags()` (pure) says why an answer set needs following up: the survey's `[follow_up]`
  rule (core.survey.FollowUpRule), by default any NPS of 6 or less or CSAT of 2 or
  less, plus a comment or an opt-out after a low score when the survey asks for them.
- `open_follow_up()` opens one for a request, once: the unique request id decides,
  however often it is asked (the alert job asks, the cron's sweep asks). Its owner is
  the lead of the call's team (FOLLOW_UP_OWNERS), else nobody; it is due the survey's
  SLA after it opened.
- `sweep()` (cron, every minute) opens the follow-ups of requests whose survey ended
  since the last sweeps: that is how comments and opt-outs, which send no alert, and
  answers on a deployment without alerts, open theirs.
- `update()` changes owner and status, and `add_note()` adds a note, each written to
  the history with who, when (the writer's time) and from where. The last writer wins
  by that time: a CRM's update older than the change already applied is kept in the
  history, marked not applied, and changes nothing.
- `visible()` is the one place that says who may see which follow-ups: an admin all, a
  supervisor (a team lead) those of the teams they lead, an analyst none.

Nothing here knows HTTP: the dashboard, the REST API and the CLI call these.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, and_, false, func, select
from sqlalchemy import update as update_statement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import utcnow
from core.models import (
    FOLLOW_UP_STATUSES,
    Answer,
    FollowUp,
    FollowUpChange,
    FollowUpNote,
    OptOut,
    RequestState,
    SurveyRequest,
    User,
    UserTeam,
)
from core.runtime import Runtime
from core.survey import FollowUpRule, SurveyDefinition
from core.survey_versions import definition_of
from scoring.nps import DETRACTOR_MAX

log = logging.getLogger(__name__)

CSAT_LOW_MAX = 2
OPEN = ("new", "contacted")
CLOSED = ("resolved", "wont_fix")
# Requests whose survey ended (an answer set that is final): what the sweep looks at.
ENDED = (
    RequestState.COMPLETED,
    RequestState.PARTIAL,
    RequestState.OPTED_OUT,
    RequestState.ABANDONED,
    RequestState.NO_REPLY,
)
# How far back the sweep looks (by the request's last change): a sweep missed for a day
# (the cron down) still opens everything.
SWEEP_WINDOW = timedelta(days=2)
MAX_NOTE = 4000
SYSTEM = "system"


class FollowUpError(ValueError):
    """A change that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class Given:
    """One answer of a request, as the rule reads it."""

    key: str
    kind: str
    value: int | None
    has_text: bool  # a comment with a transcript or a recording


def flags(rule: FollowUpRule, answers: Iterable[Given], opted_out: bool) -> list[str]:
    """Why this answer set needs a follow-up (empty: it does not), in words a supervisor
    reads on the page: "nps 3 <= 6", "comment", "opted out after csat 1"."""
    answers = list(answers)
    by_key = {a.key: a.value for a in answers}
    reasons: list[str] = []
    low: list[str] = []
    if rule.when:
        for condition in rule.when:
            if condition.holds(by_key):
                reasons.append(
                    f"{condition.question_key} {by_key[condition.question_key]} "
                    f"{condition.op} {condition.value}"
                )
    else:
        for a in answers:
            if a.value is None:
                continue
            if a.kind == "nps" and a.value <= DETRACTOR_MAX:
                reasons.append(f"{a.key} {a.value} <= {DETRACTOR_MAX}")
            elif a.kind == "csat" and a.value <= CSAT_LOW_MAX:
                reasons.append(f"{a.key} {a.value} <= {CSAT_LOW_MAX}")
    for a in answers:
        if a.value is not None and (
            (a.kind == "nps" and a.value <= DETRACTOR_MAX)
            or (a.kind == "csat" and a.value <= CSAT_LOW_MAX)
        ):
            low.append(f"{a.key} {a.value}")
    if rule.comment and any(a.kind == "comment" and a.has_text for a in answers):
        reasons.append("comment")
    if rule.opt_out_after_low_score and opted_out and low:
        reasons.append(f"opted out after {low[0]}")
    return reasons


def owner_for(team: str | None, owners: Mapping[str, str]) -> str | None:
    """The lead of the call's team (FOLLOW_UP_OWNERS), or nobody."""
    return owners.get(team) if team else None


def open_follow_up(
    session: Session,
    request_id: int,
    *,
    now: datetime,
    owners: Mapping[str, str],
    definition: SurveyDefinition | None = None,
) -> FollowUp | None:
    """The request's follow-up, opened now if its answers meet the survey's rule; None
    when they do not (or the request is gone). Safe to call any number of times."""
    existing = session.scalar(select(FollowUp).where(FollowUp.request_id == request_id))
    if existing is not None:
        return existing
    request = session.get(SurveyRequest, request_id)
    if request is None:
        return None
    if definition is None:
        if request.survey_version is None:
            return None
        definition = definition_of(request.survey_version)
    rows = session.execute(
        select(
            Answer.question_key,
            Answer.kind,
            Answer.value,
            (Answer.transcript.is_not(None) | (func.coalesce(Answer.recording_url, "") != "")),
        )
        .where(Answer.request_id == request_id)
        .order_by(Answer.id)
    ).all()
    given = [Given(key, kind, value, bool(text)) for key, kind, value, text in rows]
    opted_out = request.state is RequestState.OPTED_OUT or (
        session.scalar(select(OptOut.id).where(OptOut.request_id == request_id)) is not None
    )
    reasons = flags(definition.follow_up, given, opted_out)
    if not reasons:
        return None
    follow_up = FollowUp(
        request_id=request_id,
        survey_name=request.survey_name,
        agent=request.agent,
        queue=request.queue,
        team=request.team,
        is_test=request.is_test,
        reason="; ".join(reasons)[:200],
        owner=owner_for(request.team, owners),
        status="new",
        opened_at=now,
        due_at=now + timedelta(hours=definition.follow_up.sla_hours),
        changed_at=now,
        changed_by=SYSTEM,
    )
    try:
        with session.begin_nested():
            session.add(follow_up)
            session.flush()
            session.add(
                FollowUpChange(
                    follow_up_id=follow_up.id,
                    field="opened",
                    old_value=None,
                    new_value=follow_up.reason[:200],
                    actor=SYSTEM,
                    source=SYSTEM,
                    changed_at=now,
                    recorded_at=now,
                )
            )
    except IntegrityError:  # opened at the same moment by another path
        return session.scalar(select(FollowUp).where(FollowUp.request_id == request_id))
    return follow_up


def sweep(runtime: Runtime, now: datetime | None = None) -> int:
    """Open the follow-ups of requests whose survey ended lately and have none yet.

    Each request is looked at about once: the sweep remembers (in Redis) how far it got,
    by the requests' last change, and starts a few minutes before that the next time
    (a commit can land a little after its timestamp). Without that mark (Redis lost it,
    or none yet) it looks back SWEEP_WINDOW. Requests changed by the retention purge
    keep their time (core.retention), and purged ones are skipped: anonymising an old
    detractor opens nothing.
    """
    now = now or runtime.now()
    owners = runtime.settings.follow_up_owners
    wall = utcnow()
    # updated_at is the database's wall-clock stamp (core.models): the window is judged
    # on the wall clock, even where the dialer's clock is simulated.
    since = wall - SWEEP_WINDOW
    mark = _swept_until(runtime)
    if mark is not None:
        since = max(since, mark - SWEEP_OVERLAP)
    opened = 0
    with runtime.db.session() as session:
        rows = session.execute(
            select(SurveyRequest.id, SurveyRequest.updated_at)
            .where(
                SurveyRequest.state.in_(ENDED),
                SurveyRequest.updated_at >= since,
                SurveyRequest.phone != PURGED,
                ~select(FollowUp.id).where(FollowUp.request_id == SurveyRequest.id).exists(),
                select(Answer.id).where(Answer.request_id == SurveyRequest.id).exists()
                | (SurveyRequest.state == RequestState.OPTED_OUT),
            )
            .order_by(SurveyRequest.updated_at, SurveyRequest.id)
            .limit(SWEEP_BATCH)
        ).all()
        for request_id, _ in rows:
            if open_follow_up(session, request_id, now=now, owners=owners) is not None:
                opened += 1
    # A full batch: the next sweep goes on from its last request; else all is seen.
    _mark_swept(runtime, rows[-1].updated_at if len(rows) == SWEEP_BATCH else wall)
    if opened:
        log.info("opened %d follow-ups", opened)
    return opened


SWEEP_KEY = "aftercall:follow-ups:swept-until"
SWEEP_BATCH = 5000
# Started this far before the last mark: a request committed with an earlier timestamp
# than one the last sweep saw is not missed.
SWEEP_OVERLAP = timedelta(minutes=5)
PURGED = "purged"  # core.retention.PURGED_PHONE


def _swept_until(runtime: Runtime) -> datetime | None:
    try:
        raw = runtime.redis.get(SWEEP_KEY)
    except RedisError:
        return None
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)
    except ValueError:
        return None


def _mark_swept(runtime: Runtime, until: datetime) -> None:
    try:
        runtime.redis.set(SWEEP_KEY, until.isoformat(), ex=int(SWEEP_WINDOW.total_seconds()))
    except RedisError:
        log.warning("follow-up sweep: could not keep its mark; the next one looks back 2 days")


# -- who sees what ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who asks: a dashboard user (their role and the teams they lead) or an API key."""

    name: str
    role: str  # admin, supervisor, analyst; "api" for a key with the follow-ups scope
    teams: frozenset[str] = frozenset()

    @property
    def sees_all(self) -> bool:
        return self.role in ("admin", "api")


def teams_led(session: Session, user_id: int) -> frozenset[str]:
    return frozenset(session.scalars(select(UserTeam.team).where(UserTeam.user_id == user_id)))


def set_teams(session: Session, user_id: int, teams: Iterable[str]) -> None:
    """The teams a user leads, instead of those they led."""
    session.execute(UserTeam.__table__.delete().where(UserTeam.user_id == user_id))
    for team in sorted({t.strip() for t in teams if t.strip()}):
        session.add(UserTeam(user_id=user_id, team=team[:200]))


def may_own(session: Session, follow_up: FollowUp, username: str) -> bool:
    """Whether `username` may own `follow_up`: an admin, or a supervisor who leads its
    team; an owner who cannot open it would get it in their digest and nowhere else."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        return False
    if user.role == "admin":
        return True
    return user.role == "supervisor" and follow_up.team in teams_led(session, user.id)


def visible(viewer: Viewer) -> ColumnElement[bool]:
    """The follow-ups `viewer` may see: an admin (or a CRM's key) all, a supervisor those
    of the teams they lead, anyone else none. Test calls' follow-ups are nobody's."""
    counted = FollowUp.is_test.is_(False)
    if viewer.sees_all:
        return counted
    if viewer.role == "supervisor" and viewer.teams:
        return and_(counted, FollowUp.team.in_(sorted(viewer.teams)))
    return false()


# -- the list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    status: str | None = None  # one status, or "open" (new and contacted)
    owner: str | None = None  # a username, or "" for unassigned
    team: str | None = None
    survey: str | None = None
    overdue: bool = False
    limit: int = 50
    offset: int = 0


def conditions(query: ListQuery, viewer: Viewer, now: datetime) -> list[ColumnElement[bool]]:
    where = [visible(viewer)]
    if query.status == "open":
        where.append(FollowUp.status.in_(OPEN))
    elif query.status:
        if query.status not in FOLLOW_UP_STATUSES:
            raise FollowUpError(f"status must be open or one of {', '.join(FOLLOW_UP_STATUSES)}")
        where.append(FollowUp.status == query.status)
    if query.owner is not None:
        where.append(
            FollowUp.owner.is_(None) if query.owner == "" else FollowUp.owner == query.owner
        )
    if query.team:
        where.append(FollowUp.team == query.team)
    if query.survey:
        where.append(FollowUp.survey_name == query.survey)
    if query.overdue:
        where.append(and_(FollowUp.status.in_(OPEN), FollowUp.due_at < now))
    return where


def listing(
    session: Session, query: ListQuery, viewer: Viewer, now: datetime
) -> tuple[list[FollowUp], int]:
    """A page of follow-ups, overdue first, then by due time; and how many match."""
    where = conditions(query, viewer, now)
    overdue_first = and_(FollowUp.status.in_(OPEN), FollowUp.due_at < now)
    rows = session.scalars(
        select(FollowUp)
        .where(*where)
        .order_by(
            overdue_first.desc(), FollowUp.status.in_(OPEN).desc(), FollowUp.due_at, FollowUp.id
        )
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    total = session.scalar(select(func.count(FollowUp.id)).where(*where)) or 0
    return list(rows), total


def locked(session: Session, follow_up_id: int, viewer: Viewer) -> FollowUp | None:
    """`find()`, with the row locked until the caller's unit of work ends: two writers
    at once (a CRM and the dashboard) are taken in turn, each deciding on the other's
    committed change. The lock is a write that changes nothing, taken before anything is
    read: a row lock on PostgreSQL, the database's write lock on SQLite, where a read
    first would decide on a snapshot the other writer is about to change."""
    session.execute(
        update_statement(FollowUp).where(FollowUp.id == follow_up_id).values(id=FollowUp.id)
    )
    return find(session, follow_up_id, viewer)


def find(session: Session, follow_up_id: int, viewer: Viewer) -> FollowUp | None:
    """One follow-up, if `viewer` may see it (else None, as for one that does not exist)."""
    return session.scalar(select(FollowUp).where(FollowUp.id == follow_up_id, visible(viewer)))


# -- changes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What a writer asks: a new owner ("" unassigns), a new status, or both."""

    owner: str | None = None
    status: str | None = None


@dataclass
class Updated:
    follow_up: FollowUp
    applied: bool  # False: an older update than the one already applied (kept, unused)
    changed: list[str] = field(default_factory=list)


def update(
    session: Session,
    follow_up: FollowUp,
    change: Change,
    *,
    actor: str,
    source: str,
    at: datetime,
) -> Updated:
    """Apply `change` as of the writer's time `at`, unless a newer change was applied
    already (last writer wins by that time); either way it goes in the history."""
    if change.status is not None and change.status not in FOLLOW_UP_STATUSES:
        raise FollowUpError(f"status must be one of {', '.join(FOLLOW_UP_STATUSES)}")
    if change.owner is not None and len(change.owner) > 100:
        raise FollowUpError("owner is longer than 100 characters")
    applied = at >= follow_up.changed_at
    result = Updated(follow_up, applied)
    fields: list[tuple[str, Any, Any]] = []
    if change.owner is not None:
        fields.append(("owner", follow_up.owner, change.owner or None))
    if change.status is not None:
        fields.append(("status", follow_up.status, change.status))
    for name, old, new in fields:
        if old == new:
            continue
        session.add(
            FollowUpChange(
                follow_up_id=follow_up.id,
                field=name,
                old_value=None if old is None else str(old)[:200],
                new_value=None if new is None else str(new)[:200],
                actor=actor[:120],
                source=source,
                changed_at=at,
                recorded_at=utcnow(),
                applied=applied,
            )
        )
        if applied:
            setattr(follow_up, name, new)
            result.changed.append(name)
    if applied and "status" in result.changed:
        # Contacting the customer: contacted, or resolved (straight from new, the call
        # that resolved it was the contact). Won't fix is no contact.
        if follow_up.status in ("contacted", "resolved") and follow_up.first_contacted_at is None:
            follow_up.first_contacted_at = at
        # Closed when it moved to resolved or won't fix (between those two it keeps the
        # first closing time); reopened, it is open again.
        if follow_up.status not in CLOSED:
            follow_up.closed_at = None
        elif follow_up.closed_at is None:
            follow_up.closed_at = at
    if applied and result.changed:
        follow_up.changed_at, follow_up.changed_by = at, actor[:120]
    return result


def add_note(
    session: Session, follow_up: FollowUp, body: str, *, author: str, source: str, at: datetime
) -> FollowUpNote:
    text = (body or "").strip()
    if not text:
        raise FollowUpError("a note needs some text")
    if len(text) > MAX_NOTE:
        raise FollowUpError(f"a note is at most {MAX_NOTE} characters")
    if "\x00" in text:
        raise FollowUpError("a note cannot contain a NUL character")
    note = FollowUpNote(follow_up_id=follow_up.id, author=author[:120], body=text, created_at=at)
    session.add(note)
    session.add(
        FollowUpChange(
            follow_up_id=follow_up.id,
            field="note",
            old_value=None,
            new_value=text[:200],
            actor=author[:120],
            source=source,
            changed_at=at,
            recorded_at=utcnow(),
        )
    )
    return note


def notes(session: Session, follow_up_id: int) -> list[FollowUpNote]:
    return list(
        session.scalars(
            select(FollowUpNote)
            .where(FollowUpNote.follow_up_id == follow_up_id)
            .order_by(FollowUpNote.id)
        )
    )


def history(session: Session, follow_up_id: int) -> list[FollowUpChange]:
    return list(
        session.scalars(
            select(FollowUpChange)
            .where(FollowUpChange.follow_up_id == follow_up_id)
            .order_by(FollowUpChange.id)
        )
    )
