"""Reading a report request (CLI options, API query strings) into a ReportQuery.

One parser for every place a supervisor asks for figures, so `--since 2026-11-01` on the
command line and `?since=2026-11-01` on the API mean the same thing: a date is a whole
local day in the contact center's time zone (`until` includes its day), a date-time
needs an offset. Every mistake is a ReportError naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scoring.report import ReportError, ReportQuery

FILTERS = ("survey", "queue", "team", "agent", "language")
MAX_FILTER_LENGTH = 200


def parse_moment(value: str, name: str, zone: ZoneInfo, *, end_of_day: bool) -> datetime:
    text = value.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        if end_of_day:
            day += timedelta(days=1)
        return datetime.combine(day, time(0), tzinfo=zone)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(
            f"{name}: expected a date (2026-11-23) or a date-time with an offset"
        ) from None
    if moment.tzinfo is None:
        raise ReportError(f"{name}: a date-time needs a UTC offset, e.g. 2026-11-23T09:00:00Z")
    return moment


def parse_report_query(params: Mapping[str, str | None], zone: ZoneInfo) -> ReportQuery:
    """`params`: by (comma-separated), since, until, survey, queue, team, agent, language."""
    by_text = (params.get("by") or "").strip()
    by = tuple(part.strip() for part in by_text.split(",") if part.strip())
    since = params.get("since")
    until = params.get("until")
    since_at = parse_moment(since, "since", zone, end_of_day=False) if since else None
    until_at = parse_moment(until, "until", zone, end_of_day=True) if until else None
    if since_at and until_at and since_at >= until_at:
        raise ReportError("since: must be before until")
    filters = {}
    for name in FILTERS:
        value = params.get(name)
        if value is not None and value.strip():
            if len(value) > MAX_FILTER_LENGTH or "\x00" in value:
                raise ReportError(f"{name}: not a valid value")
            filters[name] = value.strip()
    return ReportQuery(by=by, since=since_at, until=until_at, time_zone=zone, **filters)
