"""The dashboard's Follow-ups pages: the unhappy customers to call back, who owns each
one and where it stands (issue 18, "close the loop").

    GET  /dashboard/follow-ups               the signed-in user's open follow-ups,
                                             overdue first (?status=&owner=&team=
                                             &survey=&overdue=1&page=N), and the last
                                             30 days' figures by team
    GET  /dashboard/follow-ups/<id>          one: the answers, the comment's transcript
                                             and recording, the support call, the
                                             customer's number, notes and history
    POST /dashboard/follow-ups/<id>/owner    assign it to a dashboard user, or unassign
    POST /dashboard/follow-ups/<id>/notes    add a note
    POST /dashboard/follow-ups/<id>/status   new, contacted, resolved or won't fix

Who sees which follow-up is scoring.follow_ups.visible and nothing here: an admin
every one, a supervisor those of the teams they lead (`aftercall user teams`), an
analyst none, so an analyst gets a 403 page that explains why and shows no data. A
follow-up the user may not see answers 404 like one that does not exist, so nobody
learns which ids belong to other teams by trying them.

Every change goes through scoring.follow_ups.update or add_note, with the username as
actor, source "dashboard" and the runtime's clock as its time: the same history and
last-writer-wins rule as a CRM's update through the API (aftercall.web.follow_ups_api).
The row is locked first (scoring.follow_ups.locked), so a CRM writing at the same
moment is taken in turn. A change that is refused (an unknown status, an empty note,
an owner who is no user or could not see it) renders the page again with the message
beside its field, status 400, and is rolled back whole.

What a user sees of the customer follows their role's `Contact` (core.users), with the
detractor list's rules (scoring.detractors.shown_to): a masked reader gets the number
masked, digits in free text hidden and no recording. The roles that see follow-ups
today all see in full; the rule is applied anyway, so a role added later cannot leak.

Behind the dashboard's own sign-in, security headers, CSRF check and template globals
(aftercall.web.dashboard.views), not copies of them. No JavaScript: filters are a GET
form, actions are POST forms, each answered with a redirect (303) to the page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from aftercall.web.context import current_runtime
from aftercall.web.dashboard import views as dashboard
from core.masking import Contact, hide_digits, mask_phone
from core.models import (
    FOLLOW_UP_STATUSES,
    Answer,
    FollowUp,
    FollowUpChange,
    FollowUpNote,
    SurveyRequest,
    User,
    UserTeam,
)
from core.users import MAX_USERNAME_LENGTH
from scoring import csv_export, follow_up_figures
from scoring import follow_ups as domain
from scoring.follow_ups import Change, FollowUpError, ListQuery, Viewer

bp = Blueprint(
    "follow_ups", __name__, url_prefix="/dashboard/follow-ups", template_folder="templates"
)

dashboard.guard(bp)

# The roles scoring.follow_ups.visible lets see any follow-up; the others get the 403
# page rather than an empty list that would look like nothing to do.
ROLES = ("admin", "supervisor")
PER_PAGE = 25
# Ids are 32-bit integers on PostgreSQL: a larger one in the address is simply missing.
MAX_ID = 2**31 - 1
MAX_TEAM = 200
MAX_SURVEY = 100
# The figures under the list: follow-ups opened in the last 30 days (today included, in
# REPORT_TIME_ZONE), like the results page's default range. All time would cost the
# page a read of every follow-up ever opened; `aftercall report follow-ups` has any range.
FIGURE_DAYS = 30

# The owner filter's two values that are not a username. A username never contains
# whitespace (core.users.check_username), so "no owner" can never mean a person; an
# empty value means "anyone", as "All" does in every dashboard filter.
ANYONE = ""
UNASSIGNED = "no owner"
# "open" is new and contacted together (scoring.follow_ups.OPEN); "" is any status.
OPEN = "open"
ANY_STATUS = ""
STATUS_LABELS = {
    "new": "New",
    "contacted": "Contacted",
    "resolved": "Resolved",
    "wont_fix": "Won't fix",
}
SOURCE_LABELS = {"dashboard": "dashboard", "api": "API", "system": "aftercall"}
# What a scale answer means, for the pages: its range, or its two values' words.
KIND_LABELS = {
    "nps": "NPS (0–10)",
    "csat": "CSAT (1–5)",
    "ces": "CES (1–7)",
    "yesno": "yes or no",
    "comment": "comment",
}
YES_NO = {1: "yes", 2: "no"}


def may_see_follow_ups(user: Any) -> bool:
    return user is not None and user.role in ROLES


@bp.before_request
def require_role() -> tuple[str, int] | None:
    # After require_sign_in (registered first), so g.user is set. An explanation rather
    # than a bare 403: an analyst who follows the link from a colleague learns why.
    if not may_see_follow_ups(g.get("user")):
        return render_template("dashboard/follow_ups_refused.html"), 403
    return None


@bp.app_context_processor
def _nav_globals() -> dict[str, Any]:
    """For the dashboard's nav, on every dashboard page: whether to link here."""
    return {"may_see_follow_ups": may_see_follow_ups(g.get("user"))}


@bp.context_processor
def _follow_up_globals() -> dict[str, Any]:
    return {
        "local_time": dashboard.local_time,
        "status_label": lambda status: STATUS_LABELS.get(status, status),
        "source_label": lambda source: SOURCE_LABELS.get(source, source),
        "statuses": FOLLOW_UP_STATUSES,
        "max_note": domain.MAX_NOTE,
    }


def _viewer(db: Session) -> Viewer:
    """The signed-in user as scoring.follow_ups judges them: role and teams led, read
    on every request, so `aftercall user teams` applies from the next click."""
    user = g.user
    return Viewer(name=user.username, role=user.role, teams=domain.teams_led(db, user.id))


def is_overdue(follow_up: FollowUp, now: datetime) -> bool:
    """As scoring.follow_ups.listing orders them: open and past its due time."""
    return follow_up.status in domain.OPEN and follow_up.due_at < now


def time_left(follow_up: FollowUp, now: datetime) -> str:
    """The due time in words beside the time itself, so "overdue" is read, not only
    seen in red."""
    if follow_up.status not in domain.OPEN:
        return "closed"
    seconds = int((follow_up.due_at - now).total_seconds())
    span = _span(abs(seconds))
    return f"overdue by {span}" if seconds < 0 else f"due in {span}"


def _span(seconds: int) -> str:
    if seconds < 3600:
        return f"{max(1, seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


# -- the list -------------------------------------------------------------------------


class FilterError(ValueError):
    """A filter in the address that cannot be used; `field` names it for the form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ListFilters:
    """What the user asked to see, as the query string carries it. A filter missing
    from the address takes its default (the user's own open follow-ups); an empty one
    means all."""

    owner: str  # a username, ANYONE or UNASSIGNED
    status: str = OPEN  # OPEN, one of FOLLOW_UP_STATUSES, or ANY_STATUS
    team: str = ""
    survey: str = ""
    overdue: bool = False
    page: int = 1

    def query(self) -> ListQuery:
        owner = {ANYONE: None, UNASSIGNED: ""}.get(self.owner, self.owner)
        return ListQuery(
            status=self.status or None,
            owner=owner,
            team=self.team or None,
            survey=self.survey or None,
            overdue=self.overdue,
            limit=PER_PAGE,
            offset=(self.page - 1) * PER_PAGE,
        )

    def args(self, **changes: Any) -> dict[str, str]:
        """Query-string arguments for a link to this view with some filters changed.
        Status and owner are always written: left out, they would mean the defaults."""
        values = replace(self, **changes)
        args = {"status": values.status, "owner": values.owner}
        if values.team:
            args["team"] = values.team
        if values.survey:
            args["survey"] = values.survey
        if values.overdue:
            args["overdue"] = "1"
        if values.page > 1:
            args["page"] = str(values.page)
        return args

    def same_view(self, other: ListFilters) -> bool:
        return replace(self, page=1) == replace(other, page=1)


def parse_filters(args: Mapping[str, str], me: str) -> ListFilters:
    """The filters from a query string; FilterError naming the first bad one."""
    status = args.get("status", OPEN)
    if status not in (OPEN, ANY_STATUS, *FOLLOW_UP_STATUSES):
        raise FilterError(
            "status",
            f"status: expected open, one of {', '.join(FOLLOW_UP_STATUSES)}, or empty for any",
        )
    owner = _text(args, "owner", MAX_USERNAME_LENGTH, default=me)
    team = _text(args, "team", MAX_TEAM)
    survey = _text(args, "survey", MAX_SURVEY)
    overdue = args.get("overdue", "")
    if overdue not in ("", "1"):
        raise FilterError("overdue", "overdue: expected 1 or nothing")
    page_text = args.get("page", "") or "1"
    if not (page_text.isascii() and page_text.isdigit()) or not (
        1 <= int(page_text) <= dashboard.MAX_PAGE_NUMBER
    ):
        raise FilterError("page", f"page: expected a number from 1 to {dashboard.MAX_PAGE_NUMBER}")
    return ListFilters(
        owner=owner,
        status=status,
        team=team,
        survey=survey,
        overdue=overdue == "1",
        page=int(page_text),
    )


def _text(args: Mapping[str, str], name: str, longest: int, default: str = "") -> str:
    value = args.get(name, default).strip()
    if len(value) > longest:
        raise FilterError(name, f"{name}: at most {longest} characters")
    # A NUL or control character is nothing anyone typed, and PostgreSQL refuses NULs.
    if any(not ch.isprintable() for ch in value):
        raise FilterError(name, f"{name}: no control characters")
    return value


def presets(me: str) -> list[tuple[str, str, ListFilters]]:
    """The views one click away: the default, and the ones a team lead looks for."""
    return [
        ("mine", "My open follow-ups", ListFilters(owner=me)),
        ("unassigned", "Unassigned", ListFilters(owner=UNASSIGNED)),
        ("overdue", "All overdue", ListFilters(owner=ANYONE, overdue=True)),
        ("all-open", "All open", ListFilters(owner=ANYONE)),
        ("everything", "Everything I can see", ListFilters(owner=ANYONE, status=ANY_STATUS)),
    ]


def filter_choices(
    db: Session, viewer: Viewer, filters: ListFilters, me: str
) -> dict[str, list[tuple[str, str]]]:
    """What each dropdown offers, as (value, label). Teams: those the user leads (every
    team with follow-ups for an admin). Owners: the users who may own one, and whoever
    owns one the user sees. A value chosen in the address is always offered."""
    seen = domain.visible(viewer)
    if viewer.sees_all:
        teams = list(
            db.scalars(
                select(FollowUp.team)
                .where(seen, FollowUp.team.is_not(None))
                .distinct()
                .order_by(FollowUp.team)
            )
        )
    else:
        teams = sorted(viewer.teams)
    owners = set(
        db.scalars(select(FollowUp.owner).where(seen, FollowUp.owner.is_not(None)).distinct())
    )
    owners |= set(db.scalars(select(User.username).where(User.role.in_(ROLES))))
    owners.discard(me)
    if filters.owner not in (ANYONE, UNASSIGNED, me):
        owners.add(filters.owner)
    surveys = set(current_runtime().catalog.names())
    if filters.survey:
        surveys.add(filters.survey)
    if filters.team and filters.team not in teams:
        teams = sorted([*teams, filters.team])
    return {
        "status": [
            (OPEN, "Open (new or contacted)"),
            *((s, STATUS_LABELS[s]) for s in FOLLOW_UP_STATUSES),
            (ANY_STATUS, "Any status"),
        ],
        "owner": [
            (me, f"{me} (me)"),
            (UNASSIGNED, "Unassigned"),
            (ANYONE, "Anyone"),
            *((name, name) for name in sorted(owners)),
        ],
        "team": [("", "All"), *((team, team) for team in teams)],
        "survey": [("", "All"), *((name, name) for name in sorted(surveys))],
    }


def scores(db: Session, request_ids: list[int]) -> dict[int, list[tuple[str, str, int]]]:
    """Each request's scale answers (key, kind, value), in the order they were given:
    one query for the page."""
    found: dict[int, list[tuple[str, str, int]]] = {rid: [] for rid in request_ids}
    if not request_ids:
        return found
    rows = db.execute(
        select(Answer.request_id, Answer.question_key, Answer.kind, Answer.value)
        .where(Answer.request_id.in_(request_ids), Answer.value.is_not(None))
        .order_by(Answer.request_id, Answer.id)
    )
    for request_id, key, kind, value in rows:
        found[request_id].append((key, kind, value))
    return found


def figures_since(now: datetime, zone: ZoneInfo) -> datetime:
    """The start of the figures' range: midnight in `zone`, FIGURE_DAYS - 1 days ago."""
    first_day = now.astimezone(zone).date() - timedelta(days=FIGURE_DAYS - 1)
    return datetime.combine(first_day, time(0), tzinfo=zone)


def _list_page(db: Session, filters: ListFilters, me: str) -> dict[str, Any]:
    now = current_runtime().now()
    viewer = _viewer(db)
    rows, total = domain.listing(db, filters.query(), viewer, now)
    answers = scores(db, [row.request_id for row in rows])
    first = (filters.page - 1) * PER_PAGE + 1
    groups, overall = follow_up_figures.with_total(
        db,
        ("team",),
        visible=domain.visible(viewer),
        now=now,
        since=figures_since(now, dashboard.report_zone()),
    )
    return {
        "figures": groups,
        "figures_total": overall,
        "figure_days": FIGURE_DAYS,
        "rows": [
            {
                "follow_up": row,
                "scores": answers.get(row.request_id, []),
                "overdue": is_overdue(row, now),
                "time_left": time_left(row, now),
            }
            for row in rows
        ],
        "total": total,
        "shown": (first, first + len(rows) - 1),
        "has_next": first - 1 + len(rows) < total,
        "choices": filter_choices(db, viewer, filters, me),
        "leads_no_team": viewer.role == "supervisor" and not viewer.teams,
    }


@bp.get("")
def index() -> tuple[str, int] | str:
    me = g.user.username
    error: FilterError | None = None
    try:
        filters = parse_filters(request.args.to_dict(), me)
    except FilterError as exc:
        error, filters = exc, ListFilters(owner=me)
    with current_runtime().db.session() as db:
        page = _list_page(db, filters, me)
    html = render_template(
        "dashboard/follow_ups.html",
        filters=filters,
        error=error,
        presets=presets(me),
        me=me,
        **page,
    )
    return (html, 400) if error else html


# -- one follow-up --------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerShown:
    """One answer as the reader may see it."""

    key: str
    kind: str
    value: str  # the score in words ("3", "yes"), or "" for a comment
    how: str  # keys, speech, text; "" for a recorded comment
    transcript: str | None
    recording_url: str | None  # only a web address, and only for a full view


def shown_text(text: str | None, contact: Contact) -> str | None:
    """Free text (a transcript, a note, metadata) as a reader with `contact` may read
    it: digits a customer read out are hidden from a masked view, as in the detractor
    list."""
    return text if contact is Contact.FULL else hide_digits(text)


def shown_answers(answers: list[Answer], contact: Contact) -> list[AnswerShown]:
    shown = []
    for answer in answers:
        if answer.value is None:
            value = ""
        elif answer.kind == "yesno":
            value = YES_NO.get(answer.value, str(answer.value))
        else:
            value = str(answer.value)
        recording = csv_export.safe_link(answer.recording_url) if contact is Contact.FULL else None
        shown.append(
            AnswerShown(
                key=answer.question_key,
                kind=KIND_LABELS.get(answer.kind, answer.kind),
                value=value,
                how=answer.input or ("" if answer.kind == "comment" else "keys"),
                transcript=shown_text(answer.transcript, contact),
                recording_url=recording,
            )
        )
    return shown


def owner_candidates(db: Session, team: str | None) -> list[str]:
    """The users who may own a follow-up of `team`: those who would see it (an admin,
    or a supervisor who leads the team). Owning one you cannot open helps nobody."""
    may_see = User.role == "admin"
    if team is not None:
        leads = select(UserTeam.user_id).where(UserTeam.team == team)
        may_see = or_(may_see, and_(User.role == "supervisor", User.id.in_(leads)))
    return list(db.scalars(select(User.username).where(may_see).order_by(User.username)))


def check_owner(db: Session, follow_up: FollowUp, owner: str) -> None:
    """FollowUpError unless `owner` may own this follow-up: "" (unassign), the owner it
    has already, or a dashboard user who can see it."""
    if owner in ("", follow_up.owner):
        return
    if db.scalar(select(User.id).where(User.username == owner)) is None:
        raise FollowUpError(f"no dashboard user is named {owner[:MAX_USERNAME_LENGTH]!r}")
    if owner not in owner_candidates(db, follow_up.team):
        team = f"team {follow_up.team}" if follow_up.team else "no team"
        raise FollowUpError(
            f"{owner} cannot see this follow-up: only admins, and supervisors who lead "
            f"{team}, can own it"
        )


def _detail_page(db: Session, follow_up: FollowUp, contact: Contact) -> dict[str, Any]:
    now = current_runtime().now()
    call = db.get(SurveyRequest, follow_up.request_id)
    answers = list(
        db.scalars(
            select(Answer).where(Answer.request_id == follow_up.request_id).order_by(Answer.id)
        )
    )
    candidates = owner_candidates(db, follow_up.team)
    metadata = {
        str(key): shown_text(str(value), contact) for key, value in (call.extra or {}).items()
    }
    return {
        "follow_up": follow_up,
        "call": call,
        "phone": call.phone if contact is Contact.FULL else mask_phone(call.phone),
        "metadata": metadata,
        "answers": shown_answers(answers, contact),
        "notes": [_shown_note(note, contact) for note in domain.notes(db, follow_up.id)],
        "history": [_shown_change(change, contact) for change in domain.history(db, follow_up.id)],
        "candidates": candidates,
        "owner_may_see": follow_up.owner is None or follow_up.owner in candidates,
        "overdue": is_overdue(follow_up, now),
        "time_left": time_left(follow_up, now),
        "contact": contact.value,
    }


def _shown_note(note: FollowUpNote, contact: Contact) -> dict[str, Any]:
    return {"author": note.author, "body": shown_text(note.body, contact), "at": note.created_at}


def _shown_change(change: FollowUpChange, contact: Contact) -> dict[str, Any]:
    return {
        "field": change.field,
        "old": shown_text(change.old_value, contact),
        "new": shown_text(change.new_value, contact),
        "actor": change.actor,
        "source": change.source,
        "at": change.changed_at,
        "applied": change.applied,
    }


def _found(db: Session, follow_up_id: int, *, lock: bool = False) -> FollowUp:
    """The follow-up if the signed-in user may see it, else 404, as if it did not exist."""
    if follow_up_id > MAX_ID:
        abort(404, "no such follow-up")
    viewer = _viewer(db)
    found = (
        domain.locked(db, follow_up_id, viewer) if lock else domain.find(db, follow_up_id, viewer)
    )
    if found is None:
        abort(404, "no such follow-up")
    return found


def _render_detail(
    db: Session, follow_up: FollowUp, errors: Mapping[str, str], form: Mapping[str, str]
) -> str:
    return render_template(
        "dashboard/follow_up.html",
        errors=errors,
        form=form,
        **_detail_page(db, follow_up, g.user.contact),
    )


@bp.get("/<int:follow_up_id>")
def detail(follow_up_id: int) -> str:
    with current_runtime().db.session() as db:
        return _render_detail(db, _found(db, follow_up_id), {}, {})


# -- changes --------------------------------------------------------------------------


# What an action does to the locked follow-up, at the given time: the message for the
# page and its category (done, note, error), or a FollowUpError.
Action = Callable[[Session, FollowUp, datetime], tuple[str, str]]


def _change(follow_up_id: int, field: str, action: Action) -> Response | tuple[str, int]:
    """One change to one follow-up: CSRF checked, the row locked, `action` applied and
    committed, then back to the page (303) saying what happened. A FollowUpError from
    it rolls everything back and renders the page with the message beside `field`, 400."""
    dashboard.check_csrf()
    runtime = current_runtime()
    at = runtime.now()
    outcome, error = None, None
    with runtime.db.session() as db:
        follow_up = _found(db, follow_up_id, lock=True)
        try:
            outcome = action(db, follow_up, at)
        except FollowUpError as exc:
            db.rollback()
            error = str(exc)
    if outcome is not None:
        # Only once committed: a failed commit must not leave "done" on the next page.
        flash(*outcome)
        return redirect(url_for("follow_ups.detail", follow_up_id=follow_up_id), code=303)
    with runtime.db.session() as db:
        follow_up = _found(db, follow_up_id)
        html = _render_detail(db, follow_up, {field: error}, request.form.to_dict())
    return html, 400


def _outcome(updated: domain.Updated, done: str) -> tuple[str, str]:
    """The flash message for an update: done, nothing to do, or kept but not applied
    (a newer change, from the API or another tab, stands)."""
    follow_up = updated.follow_up
    if not updated.applied:
        return (
            f"Not applied: a newer change by {follow_up.changed_by} stands; yours is kept "
            "in the history.",
            "error",
        )
    if not updated.changed:
        return "Nothing changed: it was already so.", "note"
    return done, "done"


@bp.post("/<int:follow_up_id>/owner")
def assign(follow_up_id: int) -> Response | tuple[str, int]:
    owner = request.form.get("owner", "").strip()
    actor = g.user.username

    def action(db: Session, follow_up: FollowUp, at: datetime) -> tuple[str, str]:
        if len(owner) > MAX_USERNAME_LENGTH:
            raise FollowUpError(f"owner: at most {MAX_USERNAME_LENGTH} characters")
        check_owner(db, follow_up, owner)
        updated = domain.update(
            db, follow_up, Change(owner=owner), actor=actor, source="dashboard", at=at
        )
        return _outcome(updated, f"Assigned to {owner}." if owner else "Unassigned.")

    return _change(follow_up_id, "owner", action)


@bp.post("/<int:follow_up_id>/status")
def set_status(follow_up_id: int) -> Response | tuple[str, int]:
    status = request.form.get("status", "")
    actor = g.user.username

    def action(db: Session, follow_up: FollowUp, at: datetime) -> tuple[str, str]:
        updated = domain.update(
            db, follow_up, Change(status=status), actor=actor, source="dashboard", at=at
        )
        return _outcome(updated, f"Status: {STATUS_LABELS.get(status, status)}.")

    return _change(follow_up_id, "status", action)


@bp.post("/<int:follow_up_id>/notes")
def add_note(follow_up_id: int) -> Response | tuple[str, int]:
    body = request.form.get("body", "")
    actor = g.user.username

    def action(db: Session, follow_up: FollowUp, at: datetime) -> tuple[str, str]:
        domain.add_note(db, follow_up, body, author=actor, source="dashboard", at=at)
        return "Note added.", "done"

    return _change(follow_up_id, "body", action)
