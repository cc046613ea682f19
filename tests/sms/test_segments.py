"""Texts are paced by segment, as Twilio's per-number limits count them."""

from __future__ import annotations

import pytest

from core.pacing import MESSAGE_PACING_KEY
from sms import sender
from sms.segments import segments


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # the extension table: two septets each
        ("€" * 81, 2),
        ("é" * 160, 1),  # in GSM-7's basic set
        ("ł" * 70, 1),  # not in GSM-7: the whole body is UCS-2
        ("ł" * 71, 2),
        ("\U0001f600" * 35, 1),  # two UTF-16 code units each
        ("\U0001f600" * 36, 2),
        ("Reply with a number from 0 to 10. " + "\U0001f44d", 1),
    ],
)
def test_segments(body, expected):
    assert segments(body) == expected


def paced_at(runtime, messages_per_second: float):
    settings = runtime.settings.with_overrides(messages_per_second=messages_per_second)
    return type(runtime)(
        settings=settings, db=runtime.db, catalog=runtime.catalog, _redis=runtime.redis
    )


def test_a_text_takes_a_slot_of_the_pacer_per_segment(runtime):
    runtime.redis.delete(MESSAGE_PACING_KEY)
    assert sender.pace(paced_at(runtime, 50.0), 3) is None
    assert runtime.redis.zcard(MESSAGE_PACING_KEY) == 3


def test_at_one_segment_a_second_a_two_segment_text_spans_two_seconds(runtime):
    runtime.redis.delete(MESSAGE_PACING_KEY)
    before = runtime.redis.time()
    assert sender.pace(paced_at(runtime, 1.0), 2) is None  # waits for the second slot
    ((_, admitted),) = runtime.redis.zrange(MESSAGE_PACING_KEY, -1, -1, withscores=True)
    # The second slot came a whole window (1 s, on Redis's clock) after the first.
    assert admitted - (before[0] + before[1] / 1e6) >= 1.0
