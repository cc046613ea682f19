"""When a customer may be called: their local calling hours, from their phone number.

The customer's time zones come from phonenumbers' timezone data. A number may belong to
several zones (a US area code split by a zone line; a mobile number the data only knows
by country); then a time is allowed only when it is inside the window in every one of
them, so nobody is ever called outside their hours because we guessed their zone.

The window is per survey (default 09:00-20:00 local) but can never be wider than
08:00-21:00, the US limit for telephone solicitations (47 CFR 64.1200(c)(1)), which
aftercall applies everywhere as a floor. Sundays are skipped unless a survey allows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

EARLIEST_ALLOWED = time(8, 0)
LATEST_ALLOWED = time(21, 0)
SUNDAY = 6
# How far ahead to look for an opening; any real window opens within a week.
SEARCH_DAYS = 8


@dataclass(frozen=True)
class CallingWindow:
    opens: time = time(9, 0)
    closes: time = time(20, 0)
    allow_sundays: bool = False

    def __post_init__(self) -> None:
        if not self.opens < self.closes:
            raise ValueError("calling window must open before it closes")
        if self.opens < EARLIEST_ALLOWED or self.closes > LATEST_ALLOWED:
            raise ValueError("calling window may not be wider than 08:00-21:00 local time")

    def allows(self, moment: datetime, zones: Sequence[ZoneInfo]) -> bool:
        return all(self._allows_local(moment.astimezone(zone)) for zone in zones)

    def _allows_local(self, local: datetime) -> bool:
        if local.weekday() == SUNDAY and not self.allow_sundays:
            return False
        return self.opens <= local.time() < self.closes

    def opens_at(self, earliest: datetime, zones: Sequence[ZoneInfo]) -> datetime | None:
        """The first moment at or after `earliest` inside the window in every zone.

        The allowed set is an intersection of daily intervals, so its first moment is
        either `earliest` itself or the opening of one zone's window on some day.
        """
        if earliest.tzinfo is None:
            raise ValueError("earliest must be timezone-aware")
        candidates = [earliest]
        for zone in zones:
            local_day = earliest.astimezone(zone).date()
            for offset in range(SEARCH_DAYS):
                day = local_day + timedelta(days=offset)
                opening = datetime.combine(day, self.opens, tzinfo=zone).astimezone(UTC)
                if opening > earliest:
                    candidates.append(opening)
        for candidate in sorted(candidates):
            if self.allows(candidate, zones):
                return candidate.astimezone(UTC)
        return None


def zones_for_number(e164: str, fallback: str = "UTC") -> list[ZoneInfo]:
    """Every time zone the number may be in; `fallback` when the data knows none."""
    number = phonenumbers.parse(e164)
    return zones_for_parsed(number, phonenumbers.number_type(number), fallback)


def zones_for_parsed(
    number: phonenumbers.PhoneNumber, kind: phonenumbers.PhoneNumberType, fallback: str = "UTC"
) -> list[ZoneInfo]:
    """zones_for_number for a number intake has parsed and typed already: phonenumbers'
    own time_zones_for_number would look the type up again, the costliest step of it."""
    if kind != phonenumbers.PhoneNumberType.UNKNOWN and phonenumbers.is_number_type_geographical(
        kind, number.country_code
    ):
        names = phone_timezones.time_zones_for_geographical_number(number)
    else:
        names = phone_timezones.time_zones_for_number(number)
    return list(_zones(tuple(names), fallback))


@lru_cache(maxsize=1024)
def _zones(names: tuple[str, ...], fallback: str) -> tuple[ZoneInfo, ...]:
    zones = []
    for name in [name for name in names if name != "Etc/Unknown"] or [fallback]:
        try:
            zones.append(ZoneInfo(name))
        except ZoneInfoNotFoundError:
            continue
    return tuple(zones) or (ZoneInfo(fallback),)
