"""Reading a report request (CLI options, API query strings) into a ReportQuery.

One parser for every place a supervisor asks for figures, so `--since 2026-11-01` on the
command line and `?since=2026-11-01` on the API mean the same thing: a date is a whole
local day in the contact center's time zone (`until` includes its day), a date-time
needs an offset. Every mistake is a ReportError whose `parameter` names the parameter
and whose message names the limit, so that each caller spells the parameter its own way
(`since` in an HTTP answer, `--since` on the command line).

It accepts exactly what docs/openapi.yaml says: the patterns below are the spec's (the
tests compare them), so a request the spec allows is not refused for its form, and one
it forbids does not get through. Rules between parameters (since before until, at most
MAX_BUCKETS periods) are checked here too; the spec states them in words, since a
schema cannot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scoring.buckets import UNITS
from scoring.detractors import MAX_OFFSET, MAX_PAGE
from scoring.report import (
    CHANNELS,
    DIMENSIONS,
    FILTERS,
    FIRST_DAY,
    LAST_DAY,
    META_PREFIX,
    MODES,
    ReportError,
    ReportQuery,
)

# Every filter is a parameter of the same name (FILTERS). Those on what intake was told
# take any text; `mode` takes one of MODES and `channel` one of CHANNELS, the spec's enums.
CHOICE_FILTERS = {"mode": MODES, "channel": CHANNELS}
TEXT_FILTERS = tuple(name for name in FILTERS if name not in CHOICE_FILTERS)
MAX_FILTER_LENGTH = 200
DEFAULT_PAGE = 50

# The spec's patterns (components.parameters in docs/openapi.yaml), in the regular
# expressions both Python and JSON Schema read alike. A day of FIRST_DAY's to LAST_DAY's
# years; a date-time as RFC 3339 writes it, with a capital T and Z and seconds up to 59
# (Python has no leap second).
_DAY = "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
DATE_PATTERN = "^" + _DAY + "$"
DATE_TIME_PATTERN = (
    "^" + _DAY + "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
# Comma-separated groups, spaces around them allowed, at most one of day/week/month.
_GROUP = " *(agent|queue|team|survey|language|mode|channel|meta:[^,\\u0000]*[^,\\u0000 ]) *"
_UNIT = " *(day|week|month) *"
BY_PATTERN = f"^({_GROUP}(,{_GROUP})*(,{_UNIT}(,{_GROUP})*)?|{_UNIT}(,{_GROUP})*)?$"
# Filters: any text but NUL, which PostgreSQL cannot compare.
FILTER_PATTERN = "^[^\\u0000]*$"
_DATE = re.compile(DATE_PATTERN)
_DATE_TIME = re.compile(DATE_TIME_PATTERN)


def parse_moment(value: str, name: str, zone: ZoneInfo, *, end_of_day: bool) -> datetime:
    """A date (midnight in `zone`; with `end_of_day`, the next midnight) or a date-time
    with its offset, in FIRST_DAY's to LAST_DAY's years."""
    if _DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ReportError("not a day of the calendar", name) from None
        if end_of_day:
            day += timedelta(days=1)
        return datetime.combine(day, time(0), tzinfo=zone)
    if _DATE_TIME.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ReportError("not a time of the calendar", name) from None
    if _in_another_year(value):
        raise ReportError(
            f"must be a day from {FIRST_DAY} to {LAST_DAY}, the days a report covers", name
        )
    raise ReportError(
        "expected a date (2026-11-23) or a date-time with a UTC offset (2026-11-23T09:00:00Z)",
        name,
    )


def _in_another_year(value: str) -> bool:
    """Whether `value` is well written but for its year (0001-01-01, 9999-12-31)."""
    if not re.fullmatch("[0-9]{4}", value[:4]):
        return False
    in_range = "2026" + value[4:]
    return bool(_DATE.fullmatch(in_range) or _DATE_TIME.fullmatch(in_range))


def parse_by(text: str) -> tuple[str, ...]:
    """`by`: comma-separated groups, as BY_PATTERN says; () for none."""
    if len(text) > MAX_FILTER_LENGTH:
        raise ReportError(f"at most {MAX_FILTER_LENGTH} characters", "by")
    if "\x00" in text:
        raise ReportError("no NUL character", "by")
    if not text:
        return ()
    names = tuple(part.strip(" ") for part in text.split(","))
    for name in names:
        if name in DIMENSIONS or name in UNITS:
            continue
        if name.startswith(META_PREFIX) and name[len(META_PREFIX) :].strip(" "):
            continue
        if not name:
            raise ReportError("a group's name is empty (two commas, or one at an end)", "by")
        allowed = ", ".join([*DIMENSIONS, *UNITS, "meta:<key>"])
        raise ReportError(f"cannot group by {name[:50]!r} (expected one of {allowed})", "by")
    if sum(name in UNITS for name in names) > 1:
        raise ReportError("group by one of day, week or month, not several", "by")
    return names


def parse_report_query(params: Mapping[str, str | None], zone: ZoneInfo) -> ReportQuery:
    """`params`: by (comma-separated), since, until, survey, queue, team, agent, language,
    mode, channel.

    A parameter that is None is absent; an empty `since` or `until` is a mistake, an
    empty text filter or `by` asks for nothing; `mode` is one of MODES and `channel` one
    of CHANNELS exactly, as the spec's enums say (an empty one too is a mistake)."""
    by = parse_by(params.get("by") or "")
    since = params.get("since")
    until = params.get("until")
    since_at = None if since is None else parse_moment(since, "since", zone, end_of_day=False)
    until_at = None if until is None else parse_moment(until, "until", zone, end_of_day=True)
    if since_at and until_at and since_at >= until_at:
        raise ReportError("must be before until", "since")
    filters = {}
    for name in CHOICE_FILTERS:
        value = params.get(name)
        if value is not None:
            filters[name] = parse_choice(name, value)
    for name in TEXT_FILTERS:
        value = params.get(name)
        if value is not None and value.strip():
            if len(value) > MAX_FILTER_LENGTH or "\x00" in value:
                raise ReportError(
                    f"at most {MAX_FILTER_LENGTH} characters, and no NUL character", name
                )
            filters[name] = value.strip()
    query = ReportQuery(by=by, since=since_at, until=until_at, time_zone=zone, **filters)
    query.check_periods()
    return query


def parse_choice(name: str, text: str) -> str:
    """`mode` (callback or in_call) or `channel` (voice, sms or sms_fallback), exactly."""
    allowed = CHOICE_FILTERS[name]
    if text not in allowed:
        raise ReportError(f"expected one of {', '.join(allowed)}", name)
    return text


def parse_page(params: Mapping[str, str | None]) -> tuple[int, int]:
    """The detractor list's `limit` (1 to MAX_PAGE, default DEFAULT_PAGE) and `offset`
    (0 to MAX_OFFSET)."""
    limit = _whole_number(params.get("limit"), "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = _whole_number(params.get("offset"), "offset", 0, 0, MAX_OFFSET)
    return limit, offset


def _whole_number(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses, and '٣', which
    # it reads as 3. The length first: int() refuses more than 4,300 digits with an error.
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit() and len(digits) <= len(str(high))):
        raise ReportError(f"expected a whole number from {low:,} to {high:,}", name)
    number = int(digits)
    if not low <= number <= high:
        raise ReportError(f"expected a whole number from {low:,} to {high:,}", name)
    return number
