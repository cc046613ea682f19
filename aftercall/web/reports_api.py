"""The report API: the supervisors' figures as JSON, for BI tools and scripts.

    GET /api/v1/reports/scores       NPS, CSAT, CES and the funnel, grouped (?by=agent,day)
    GET /api/v1/reports/detractors   NPS <= 6 or CSAT <= 2, newest first, with comments

Same filters as `aftercall report` (scoring.filters), `mode` (callback or in_call) and
`channel` (voice, sms or sms_fallback) among them; `by=mode` and `by=channel` put them
side by side. Every row carries the text steps of the funnel (texted, undelivered,
no_reply), zero where nothing was texted. A row whose agent, queue or team is null
(an in-call survey no support call claimed) carries `unattributed: true`. A key needs
the `reports` or `reports:full` scope (aftercall.web.api_access refuses others with
403); only `reports:full` gets customers' full numbers and recording links, every other
key the entries as scoring.detractors.shown_to masks them. Documented in
docs/openapi.yaml, which the tests validate every response against.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request

from aftercall.web.api_access import ApiError, api_error, iso_utc, require_api_key
from aftercall.web.context import current_runtime
from core.apikeys import REPORTS_FULL
from scoring.detractors import Contact, detractors, shown_to
from scoring.filters import FILTERS, parse_page, parse_report_query
from scoring.report import (
    ReportError,
    ReportQuery,
    ReportRow,
    SpokenShare,
    report,
    spoken_share,
    totals,
)

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")
bp.before_request(require_api_key)
bp.register_error_handler(ApiError, api_error)

COMPARISONS = ("previous", "team")


QUERY_PARAMETERS = frozenset({"by", "since", "until", *FILTERS})
ALLOWED = {
    "reports.scores": QUERY_PARAMETERS | {"compare"},
    "reports.detractor_list": (QUERY_PARAMETERS - {"by"}) | {"limit", "offset"},
}


def _query() -> ReportQuery:
    # A misspelt parameter ("sinec") would otherwise silently widen the report.
    unknown = sorted(set(request.args) - ALLOWED.get(request.endpoint or "", QUERY_PARAMETERS))
    if unknown:
        raise ApiError(400, "invalid_query", f"unknown parameter {unknown[0][:50]!r}")
    zone = ZoneInfo(current_runtime().settings.report_time_zone)
    try:
        return parse_report_query(request.args, zone)
    except ReportError as exc:
        raise _invalid_query(exc) from None


def _invalid_query(error: ReportError) -> ApiError:
    """A ReportError as the API says it: the parameter by its query-string name."""
    return ApiError(400, "invalid_query", str(error))


def _report(query: ReportQuery) -> list[ReportRow]:
    with current_runtime().db.session() as session:
        try:
            return report(session, query)
        except ReportError as exc:
            raise _invalid_query(exc) from None


def _query_json(query: ReportQuery) -> dict[str, Any]:
    return {
        "by": list(query.by),
        "since": iso_utc(query.since),
        "until": iso_utc(query.until),
        "time_zone": query.time_zone.key,
        **{name: getattr(query, name) for name in FILTERS},
    }


@bp.get("/scores")
def scores() -> Response:
    query = _query()
    compare = request.args.get("compare")
    if compare is not None and compare not in COMPARISONS:
        raise ApiError(400, "invalid_query", f"compare: expected one of {', '.join(COMPARISONS)}")
    rows = _report(query)
    body: dict[str, Any] = {
        "query": _query_json(query),
        "rows": [row.to_json() for row in rows],
        "total": totals(rows).to_json(),
        "answer_input": _spoken_share(query).to_json(),
    }
    if compare == "previous":
        try:
            previous = query.previous_period()
        except ReportError as exc:
            raise _invalid_query(exc) from None
        previous_rows = _report(previous)
        body["previous"] = {
            "query": _query_json(previous),
            "rows": [row.to_json() for row in previous_rows],
            "total": totals(previous_rows).to_json(),
        }
    elif compare == "team":
        if "agent" not in query.by:
            raise ApiError(400, "invalid_query", "compare=team needs by=agent")
        agent_by = query.by if "team" in query.by else (*query.by, "team")
        team_by = tuple(name for name in agent_by if name != "agent")
        teams = {_key(row, team_by): row for row in _report(replace(query, by=team_by))}
        body["rows"] = [
            {**row.to_json(), "team_figures": _team_figures(teams.get(_key(row, team_by)))}
            for row in _report(replace(query, by=agent_by))
        ]
    return jsonify(body)


def _spoken_share(query: ReportQuery) -> SpokenShare:
    with current_runtime().db.session() as session:
        return spoken_share(session, query)


def _key(row: ReportRow, names: tuple[str, ...]) -> tuple:
    return tuple(row.group.get(name) for name in names)


def _team_figures(row: ReportRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    figures = row.to_json()
    keep = ("nps", "nps_margin", "nps_responses", "csat", "csat_responses", "ces",
            "response_rate")  # fmt: skip
    return {name: figures[name] for name in keep}


@bp.get("/detractors")
def detractor_list() -> Response:
    query = _query()
    try:
        limit, offset = parse_page(request.args)
    except ReportError as exc:
        raise _invalid_query(exc) from None
    contact = _contact()
    with current_runtime().db.session() as session:
        entries = detractors(session, query, limit=limit, offset=offset)
    return jsonify(
        query=_query_json(query),
        limit=limit,
        offset=offset,
        contact=contact.value,
        detractors=[shown_to(entry, contact).to_json() for entry in entries],
    )


def _contact() -> Contact:
    """Full contact details for a `reports:full` key only; masked for everything else."""
    scopes = g.get("api_key_scopes", frozenset())
    return Contact.FULL if REPORTS_FULL in scopes else Contact.MASKED
