from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.models import CallAttempt, OptOut, RequestState, Suppression, SurveyRequest
from core.survey import DialingSettings
from dialer import rules

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
PHONE = "+14155550123"


@given(call_id=st.text(min_size=1, max_size=50), percent=st.floats(0, 100))
def test_sampling_is_deterministic_per_source_call(call_id, percent):
    assert rules.is_sampled(call_id, percent) == rules.is_sampled(call_id, percent)


@pytest.mark.parametrize("percent", [0, 10, 50, 100])
def test_sampling_rate_is_close_to_the_setting(percent):
    sampled = sum(rules.is_sampled(f"call-{i}", percent) for i in range(20_000))
    assert abs(sampled / 20_000 * 100 - percent) < 1.5


def test_sampling_is_monotonic_in_the_rate():
    # Raising the rate never drops a call that was already sampled.
    for i in range(2_000):
        if rules.is_sampled(f"c{i}", 20):
            assert rules.is_sampled(f"c{i}", 60)


@pytest.mark.parametrize(("attempts_made", "minutes"), [(1, 30), (2, 120), (3, 120), (9, 120)])
def test_retry_backoff(attempts_made, minutes):
    assert rules.retry_delay(DialingSettings(), attempts_made) == timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("state", "sip", "voicemail_retries", "retryable"),
    [
        (RequestState.NO_ANSWER, None, False, True),
        (RequestState.BUSY, 486, False, True),
        (RequestState.FAILED, 503, False, True),
        (RequestState.FAILED, 404, False, False),
        (RequestState.FAILED, 410, False, False),
        (RequestState.VOICEMAIL, None, False, False),
        (RequestState.VOICEMAIL, None, True, True),
        (RequestState.COMPLETED, None, True, False),
        (RequestState.PARTIAL, None, True, False),
        (RequestState.OPTED_OUT, None, True, False),
    ],
)
def test_what_is_retried(state, sip, voicemail_retries, retryable):
    settings = DialingSettings(retry_voicemail=voicemail_retries)
    assert rules.is_retryable(state, sip, settings) is retryable


def add_request(session, phone=PHONE, state=RequestState.COMPLETED, attempts=(), source=None):
    request = SurveyRequest(
        phone=phone,
        source_call_id=source or f"src-{session.query(SurveyRequest).count()}",
        language="en",
        call_ended_at=NOW - timedelta(days=40),
        survey_name="post-call",
        state=state,
    )
    session.add(request)
    session.flush()
    for number, (days_ago, status) in enumerate(attempts, start=1):
        session.add(
            CallAttempt(
                request_id=request.id, number=number, status=status,
                created_at=NOW - timedelta(days=days_ago),
            )
        )  # fmt: skip
    session.flush()
    return request


DEFAULTS = DialingSettings()


def suppression(runtime, settings=DEFAULTS, source="new-call"):
    with runtime.db.session() as session:
        history = rules.load_history(session, [PHONE], NOW)
        return rules.intake_suppression(history, PHONE, source, settings, NOW)


def test_a_fresh_number_may_be_surveyed(runtime):
    assert suppression(runtime) is None


def test_fatigue_counts_calls_placed_not_only_completed(runtime):
    with runtime.db.session() as session:
        add_request(session, state=RequestState.NO_ANSWER, attempts=[(10, "no-answer")])
    assert suppression(runtime) is Suppression.SURVEYED_RECENTLY
    assert suppression(runtime, DialingSettings(fatigue_days=7)) is None


def test_calls_twilio_refused_do_not_count(runtime):
    with runtime.db.session() as session:
        add_request(session, state=RequestState.FAILED, attempts=[(1, "rejected")])
    assert suppression(runtime) is None


def test_the_hard_cap_holds_even_with_fatigue_off(runtime):
    no_fatigue = DialingSettings(fatigue_days=0)
    with runtime.db.session() as session:
        add_request(session, state=RequestState.BUSY, attempts=[(20, "busy"), (20, "busy")])
        add_request(session, state=RequestState.COMPLETED, attempts=[(5, "completed")])
    assert suppression(runtime, no_fatigue) is Suppression.CALL_CAP
    with runtime.db.session() as session:
        assert rules.call_time_suppression(session, PHONE, NOW) is Suppression.CALL_CAP
        # 31 days later the oldest calls no longer count.
        later = NOW + timedelta(days=11)
        assert rules.call_time_suppression(session, PHONE, later) is None


def test_opt_out_and_under_way_and_sampling(runtime):
    assert suppression(runtime, DialingSettings(sample_percent=0)) is Suppression.NOT_SAMPLED
    with runtime.db.session() as session:
        add_request(session, state=RequestState.SCHEDULED)
    assert suppression(runtime) is Suppression.SURVEY_UNDER_WAY
    with runtime.db.session() as session:
        session.add(OptOut(phone=PHONE, source="cli"))
    assert suppression(runtime) is Suppression.OPTED_OUT


def test_first_call_time_waits_for_the_delay_and_the_window():
    la = [ZoneInfo("America/Los_Angeles")]
    settings = DialingSettings(delay_minutes=15)
    assert rules.first_call_time(NOW, NOW - timedelta(minutes=5), settings, la) == NOW + timedelta(
        minutes=10
    )
    night = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # 21:00 in Los Angeles
    assert rules.first_call_time(night, night, settings, la) == datetime(
        2026, 11, 24, 17, 0, tzinfo=UTC
    )
    short = DialingSettings(valid_hours=2)
    assert rules.first_call_time(night, night, short, la) is Suppression.EXPIRED
