"""Calendar buckets (day, week, month) in the contact center's time zone, as UTC ranges.

Reports group by local days, ISO weeks (Monday first) and months. Rather than asking
each database to convert time zones (SQLite cannot), the buckets of the requested range
are computed here, exactly across daylight-saving changes, and handed to the query as a
small table of [start, end) UTC ranges to join on. Both databases then give the same
figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

UNITS = ("day", "week", "month")
# A report is for people to read: more buckets than this is a mistake in the request.
MAX_BUCKETS = 5000


class TooManyBuckets(ValueError):
    """The range holds more than MAX_BUCKETS periods of the unit."""


@dataclass(frozen=True)
class Bucket:
    label: str  # 2026-11-23, 2026-W48, 2026-11
    starts: datetime  # UTC, inclusive
    ends: datetime  # UTC, exclusive


def _first_day(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def _next_first_day(day: date, unit: str) -> date:
    if unit == "day":
        return day + timedelta(days=1)
    if unit == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _label(day: date, unit: str) -> str:
    if unit == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if unit == "month":
        return f"{day:%Y-%m}"
    return day.isoformat()


def buckets(since: datetime, until: datetime, unit: str, zone: ZoneInfo) -> list[Bucket]:
    """The buckets covering [since, until), each clipped to nothing: whole local periods."""
    if unit not in UNITS:
        raise ValueError(f"unknown time unit {unit!r} (expected one of {', '.join(UNITS)})")
    day = _first_day(since.astimezone(zone).date(), unit)
    result: list[Bucket] = []
    while True:
        starts = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        if starts >= until:
            break
        following = _next_first_day(day, unit)
        ends = datetime.combine(following, time(0), tzinfo=zone).astimezone(UTC)
        result.append(Bucket(_label(day, unit), starts, ends))
        if len(result) > MAX_BUCKETS:
            raise TooManyBuckets(f"more than {MAX_BUCKETS} {unit}s in the range; narrow it")
        day = following
    return result


def local_period_start(moment: datetime, unit: str, zone: ZoneInfo) -> datetime:
    """The UTC start of the local day/week/month that contains `moment`."""
    day = _first_day(moment.astimezone(zone).date(), unit)
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_days(first: date, last: date, zone: ZoneInfo) -> list[tuple[date, datetime, str, str]]:
    """(day, its start in UTC, its ISO week's label, its month's label) for each local day
    from `first` to `last`: the days `buckets` gives, as SQLite's rollup files rows in."""
    days = []
    day = first
    while day <= last:
        starts = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        days.append((day, starts, _label(day, "week"), _label(day, "month")))
        day += timedelta(days=1)
    return days
