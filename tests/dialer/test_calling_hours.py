from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.calling_hours import CallingWindow, zones_for_number

NEW_YORK, LA, TOKYO = (
    ZoneInfo("America/New_York"),
    ZoneInfo("America/Los_Angeles"),
    ZoneInfo("Asia/Tokyo"),
)
ZONES = st.sampled_from(
    [NEW_YORK, LA, TOKYO, ZoneInfo("Europe/Warsaw"), ZoneInfo("Australia/Lord_Howe"),
     ZoneInfo("Asia/Kathmandu"), ZoneInfo("Pacific/Chatham"), ZoneInfo("Europe/Madrid"),
     ZoneInfo("Atlantic/Canary")]
)  # fmt: skip
MOMENTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


def test_window_is_never_wider_than_eight_to_nine():
    with pytest.raises(ValueError):
        CallingWindow(opens=time(7, 59))
    with pytest.raises(ValueError):
        CallingWindow(closes=time(21, 1))
    with pytest.raises(ValueError):
        CallingWindow(opens=time(12), closes=time(12))
    CallingWindow(opens=time(8), closes=time(21))


@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        (datetime(2026, 11, 23, 8, 59), False),
        (datetime(2026, 11, 23, 9, 0), True),
        (datetime(2026, 11, 23, 19, 59), True),
        (datetime(2026, 11, 23, 20, 0), False),
        (datetime(2026, 11, 22, 12, 0), False),  # a Sunday
        (datetime(2026, 11, 21, 12, 0), True),  # a Saturday
    ],
)
def test_default_window_in_local_time(local, allowed):
    moment = local.replace(tzinfo=NEW_YORK)
    assert CallingWindow().allows(moment, [NEW_YORK]) is allowed


def test_sundays_when_allowed():
    sunday_noon = datetime(2026, 11, 22, 12, 0, tzinfo=NEW_YORK)
    assert CallingWindow(allow_sundays=True).allows(sunday_noon, [NEW_YORK])


def test_a_number_in_several_zones_is_called_only_when_all_are_open():
    # 16:30 UTC: 08:30 in Los Angeles (closed), 11:30 in New York (open).
    moment = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)
    window = CallingWindow()
    assert window.allows(moment, [NEW_YORK])
    assert not window.allows(moment, [NEW_YORK, LA])
    assert window.opens_at(moment, [NEW_YORK, LA]) == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def test_zones_that_never_overlap_have_no_window():
    # 09:00-10:00 in Tokyo and in New York never coincide.
    window = CallingWindow(opens=time(9), closes=time(10))
    assert window.opens_at(datetime(2026, 11, 23, tzinfo=UTC), [TOKYO, NEW_YORK]) is None


def test_saturday_evening_skips_sunday():
    saturday_late = datetime(2026, 11, 21, 21, 0, tzinfo=TOKYO)
    opening = CallingWindow().opens_at(saturday_late.astimezone(UTC), [TOKYO])
    assert opening.astimezone(TOKYO) == datetime(2026, 11, 23, 9, 0, tzinfo=TOKYO)  # Monday


def test_across_a_daylight_saving_change():
    # US clocks go back on 1 November 2026: 09:00 New York is 14:00 UTC, not 13:00.
    night = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    opening = CallingWindow(allow_sundays=True).opens_at(night, [NEW_YORK])
    assert opening == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(moment=MOMENTS, zones=st.lists(ZONES, min_size=1, max_size=3, unique=True),
       sundays=st.booleans())  # fmt: skip
def test_opening_is_the_first_allowed_moment(moment, zones, sundays):
    window = CallingWindow(allow_sundays=sundays)
    opening = window.opens_at(moment, zones)
    if opening is None:
        return
    assert opening >= moment
    assert window.allows(opening, zones)
    # Nothing earlier (at minute resolution) was allowed.
    probe = moment
    while probe < opening - timedelta(minutes=1):
        assert not window.allows(probe, zones)
        probe += timedelta(minutes=17)


@pytest.mark.parametrize(
    ("number", "zones"),
    [
        ("+14155550123", {"America/Los_Angeles"}),
        ("+48601234567", {"Europe/Warsaw"}),
        ("+34612345678", {"Europe/Madrid", "Atlantic/Canary"}),
    ],
)
def test_zones_for_number(number, zones):
    assert {z.key for z in zones_for_number(number)} == zones


def test_unknown_zone_falls_back():
    # +800 numbers are non-geographic: no zone in the data.
    assert [z.key for z in zones_for_number("+80012345678", fallback="Europe/Paris")] == [
        "Europe/Paris"
    ]
