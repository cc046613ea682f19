"""The follow-ups API: what a CRM (Zendesk, Salesforce, HubSpot) needs to mirror them.

    GET   /api/v1/follow-ups         a page, overdue first (?status=open&team=&owner=...)
    GET   /api/v1/follow-ups/<id>    one, with the customer, the answers, notes, history
    GET   /api/v1/follow-ups/figures open, overdue, medians, SLA share (?by=team,owner)
    PATCH /api/v1/follow-ups/<id>    owner, status and/or a note, as of `updated_at`

A key needs the `follow-ups` scope; it sees every follow-up but test calls', customers'
numbers in full (the CRM calls them back). An update carries the CRM's own time of the
change (`updated_at`): the last writer wins by it (scoring.follow_ups.update), so a
CRM echoing an older state does not undo a supervisor's newer change in the dashboard;
the history keeps both. Documented in docs/openapi.yaml and docs/follow-ups.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import select

from aftercall.web.api_access import ApiError, api_error, iso_utc, require_api_key
from aftercall.web.context import current_runtime
from core.models import Answer, FollowUp, SurveyRequest
from scoring import follow_up_figures, follow_ups
from scoring.filters import parse_moment
from scoring.follow_up_figures import FigureError
from scoring.follow_ups import Change, FollowUpError, ListQuery, Viewer
from scoring.report import ReportError

bp = Blueprint("follow_ups_api", __name__, url_prefix="/api/v1/follow-ups")
bp.before_request(require_api_key)
bp.register_error_handler(ApiError, api_error)

LIST_PARAMETERS = frozenset({"status", "owner", "team", "survey", "overdue", "limit", "offset"})
PATCH_FIELDS = frozenset({"owner", "status", "note", "updated_at", "actor"})
MAX_LIMIT = 500
MAX_ID = 2**31 - 1
# How far ahead of this server's clock a writer's updated_at may be.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _viewer() -> Viewer:
    return Viewer(name=f"api:{g.api_key_name}", role="api")


@bp.get("")
def list_follow_ups() -> Response:
    unknown = sorted(set(request.args) - LIST_PARAMETERS)
    if unknown:
        raise ApiError(400, "invalid_query", f"unknown parameter {unknown[0][:50]!r}")
    if any(not _storable(value) for value in request.args.values()):
        raise ApiError(400, "invalid_query", "a parameter contains a NUL or invalid character")
    query = ListQuery(
        status=request.args.get("status") or None,
        owner=request.args.get("owner"),
        team=request.args.get("team") or None,
        survey=request.args.get("survey") or None,
        overdue=_flag("overdue"),
        limit=_whole("limit", 50, 1, MAX_LIMIT),
        offset=_whole("offset", 0, 0, 10_000_000),
    )
    runtime = current_runtime()
    with runtime.db.session() as session:
        try:
            rows, total = follow_ups.listing(session, query, _viewer(), runtime.now())
        except FollowUpError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from None
        phones = _phones(session, [row.request_id for row in rows])
        body = {
            "follow_ups": [
                _summary(row, phones.get(row.request_id), runtime.now()) for row in rows
            ],
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
        }
    return jsonify(body)


@bp.get("/figures")
def figures() -> Response:
    unknown = sorted(set(request.args) - {"by", "since", "until"})
    if unknown:
        raise ApiError(400, "invalid_query", f"unknown parameter {unknown[0][:50]!r}")
    runtime = current_runtime()
    zone = ZoneInfo(runtime.settings.report_time_zone)
    by = tuple(name.strip() for name in request.args.get("by", "").split(",") if name.strip())
    try:
        since = _moment("since", zone, end_of_day=False)
        until = _moment("until", zone, end_of_day=True)
        with runtime.db.session() as session:
            rows, total = follow_up_figures.with_total(
                session,
                by,
                visible=follow_ups.visible(_viewer()),
                now=runtime.now(),
                since=since,
                until=until,
            )
    except (FigureError, ReportError) as exc:
        raise ApiError(400, "invalid_query", str(exc)) from None
    return jsonify({"by": list(by), "rows": [r.to_json() for r in rows], "total": total.to_json()})


def _moment(name: str, zone: ZoneInfo, *, end_of_day: bool) -> datetime | None:
    raw = request.args.get(name)
    return None if not raw else parse_moment(raw, name, zone, end_of_day=end_of_day)


@bp.get("/<int:follow_up_id>")
def get_follow_up(follow_up_id: int) -> Response:
    runtime = current_runtime()
    with runtime.db.session() as session:
        return jsonify(_detail(session, _found(session, follow_up_id), runtime.now()))


@bp.patch("/<int:follow_up_id>")
def update_follow_up(follow_up_id: int) -> tuple[Response, int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    unknown = sorted(set(body) - PATCH_FIELDS)
    if unknown:
        raise ApiError(400, "invalid_body", f"unknown field(s): {', '.join(unknown)[:200]}")
    at = _time(body.get("updated_at"))
    for name in ("owner", "status", "note", "actor"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ApiError(400, "invalid_body", f"{name} must be a string or null")
        if body.get(name) is not None and not _storable(body[name]):
            raise ApiError(400, "invalid_body", f"{name} contains a NUL or invalid character")
    if body.get("owner") is None and body.get("status") is None and not body.get("note"):
        raise ApiError(400, "invalid_body", "nothing to change: give owner, status or note")
    actor = f"api:{g.api_key_name}" + (f" ({body['actor'][:60]})" if body.get("actor") else "")
    owner = body.get("owner")
    runtime = current_runtime()
    with runtime.db.session() as session:
        follow_up = _found(session, follow_up_id, lock=True)
        if owner and not follow_ups.may_own(session, follow_up, owner):
            # An owner signs in to work it: a CRM maps its agents to dashboard users.
            raise ApiError(
                400,
                "invalid_body",
                f"owner {owner[:100]!r} is not a dashboard user who may work this "
                "follow-up (an admin, or a supervisor leading its team)",
            )
        try:
            updated = follow_ups.update(
                session,
                follow_up,
                Change(owner=body.get("owner"), status=body.get("status")),
                actor=actor,
                source="api",
                at=at,
            )
            if body.get("note"):
                follow_ups.add_note(
                    session, follow_up, body["note"], author=actor, source="api", at=at
                )
        except FollowUpError as exc:
            session.rollback()
            raise ApiError(400, "invalid_body", str(exc)) from None
        session.flush()
        result = _detail(session, follow_up, runtime.now())
        result["applied"] = updated.applied
    return jsonify(result), 200


def _found(session: Any, follow_up_id: int, lock: bool = False) -> FollowUp:
    if follow_up_id > MAX_ID:
        raise ApiError(404, "not_found", f"no follow-up {follow_up_id}")
    # A writer locks the row first (scoring.follow_ups.locked): another writer at the
    # same moment waits for this one's commit, then decides by the times.
    lookup = follow_ups.locked if lock else follow_ups.find
    found = lookup(session, follow_up_id, _viewer())
    if found is None:
        raise ApiError(404, "not_found", f"no follow-up {follow_up_id}")
    return found


def _summary(row: FollowUp, phone: str | None, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "request_id": row.request_id,
        "phone": phone,
        "survey": row.survey_name,
        "agent": row.agent,
        "queue": row.queue,
        "team": row.team,
        "reason": row.reason,
        "owner": row.owner,
        "status": row.status,
        "opened_at": iso_utc(row.opened_at),
        "due_at": iso_utc(row.due_at),
        "overdue": row.status in follow_ups.OPEN and row.due_at < now,
        "first_contacted_at": iso_utc(row.first_contacted_at),
        "closed_at": iso_utc(row.closed_at),
        "updated_at": iso_utc(row.changed_at),
        "updated_by": row.changed_by,
    }


def _detail(session: Any, row: FollowUp, now: datetime) -> dict[str, Any]:
    request_row = session.get(SurveyRequest, row.request_id)
    answers = session.scalars(
        select(Answer).where(Answer.request_id == row.request_id).order_by(Answer.id)
    ).all()
    body = _summary(row, request_row.phone if request_row else None, now)
    body.update(
        source_call_id=request_row.source_call_id if request_row else None,
        call_ended_at=iso_utc(request_row.call_ended_at) if request_row else None,
        channel=request_row.channel.value if request_row else None,
        metadata=request_row.extra if request_row else {},
        answers=[
            {
                "question_key": a.question_key,
                "kind": a.kind,
                "value": a.value,
                "transcript": a.transcript,
                "recording_url": a.recording_url or None,
                "input": a.input,
            }
            for a in answers
        ],
        notes=[
            {"author": n.author, "body": n.body, "at": iso_utc(n.created_at)}
            for n in follow_ups.notes(session, row.id)
        ],
        history=[
            {
                "field": c.field,
                "from": c.old_value,
                "to": c.new_value,
                "by": c.actor,
                "source": c.source,
                "at": iso_utc(c.changed_at),
                "applied": c.applied,
            }
            for c in follow_ups.history(session, row.id)
        ],
    )
    return body


def _phones(session: Any, request_ids: list[int]) -> dict[int, str]:
    if not request_ids:
        return {}
    rows = session.execute(
        select(SurveyRequest.id, SurveyRequest.phone).where(SurveyRequest.id.in_(request_ids))
    )
    return dict(rows.all())


def _time(raw: object) -> datetime:
    if not isinstance(raw, str):
        raise ApiError(
            400,
            "invalid_body",
            "updated_at is required: the time of the change in your system (ISO 8601 "
            "with an offset); the last writer wins by it",
        )
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ApiError(400, "invalid_body", "updated_at is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ApiError(400, "invalid_body", "updated_at needs a UTC offset (e.g. Z)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ApiError(400, "invalid_body", "updated_at is out of range") from None
    # A time from the future would win over every later change until then (a CRM's
    # clock off, or local time sent as Z); one before 2000 is a typo.
    if value > datetime.now(UTC) + MAX_CLOCK_SKEW or value.year < 2000:
        raise ApiError(
            400,
            "invalid_body",
            "updated_at must be the time of the change: not in the future (check the "
            "sender's clock and offset) and not before 2000",
        )
    return value


def _storable(text: str) -> bool:
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _flag(name: str) -> bool:
    raw = request.args.get(name, "")
    if raw in ("", "0", "false"):
        return False
    if raw in ("1", "true"):
        return True
    raise ApiError(400, "invalid_query", f"{name} must be true or false")


def _whole(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_query", f"{name} must be a whole number from {low} to {high}")
    return int(raw)
