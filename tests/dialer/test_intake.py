from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from core.models import OptOut, RequestState, SurveyRequest
from dialer.intake import CallEnded, IntakeRejected, Rejection, normalise_phone, register_call

ENDED = datetime(2026, 11, 23, 14, 0, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+1 415-555-0123", None, "+14155550123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("+48 601 234 567", None, "+48601234567"),
        ("601 234 567", "PL", "+48601234567"),
        ("+34 612 34 56 78", None, "+34612345678"),
    ],
)
def test_numbers_are_normalised_to_e164(raw, region, e164):
    assert normalise_phone(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", Rejection.INVALID_PHONE),
        ("not a number", Rejection.INVALID_PHONE),
        ("+1 415 555", Rejection.INVALID_PHONE),
        ("415-555-0123", Rejection.INVALID_PHONE),  # no region to read it in
        ("+1 900 555 0123", Rejection.UNCALLABLE_PHONE),  # US premium rate
    ],
)
def test_uncallable_numbers_are_rejected(raw, reason):
    with pytest.raises(IntakeRejected) as error:
        normalise_phone(raw)
    assert error.value.reason is reason


# Monday 2026-11-23 18:00 UTC is 10:00 in California: inside the calling window.
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def ended(**overrides):
    values = dict(
        phone="+14155550123", source_call_id="crm-1", ended_at=NOW - timedelta(minutes=30)
    )
    return CallEnded(**(values | overrides))


def register(runtime, call, now=NOW):
    with runtime.db.session() as session:
        return register_call(session, runtime.catalog, call, now=now, settings=runtime.settings)


def count_requests(runtime):
    with runtime.db.session() as session:
        return session.scalar(select(func.count(SurveyRequest.id)))


def stored(runtime, request_id):
    with runtime.db.session() as session:
        return session.get(SurveyRequest, request_id)


def test_an_accepted_call_is_scheduled_with_its_survey_version(runtime):
    result = register(runtime, ended(phone="+1 (415) 555-0123", metadata={"ticket": "T-9"}))
    assert result.accepted
    assert result.due_at == NOW  # the 5-minute delay has passed; California is open
    request = stored(runtime, result.request_id)
    assert request.phone == "+14155550123"
    assert request.state is RequestState.SCHEDULED
    assert request.due_at == NOW
    assert request.survey_name == "post-call"
    assert request.survey_version_id is not None
    assert request.extra == {"ticket": "T-9"}


def test_the_first_call_waits_for_the_delay_after_the_support_call(runtime):
    result = register(runtime, ended(ended_at=NOW - timedelta(minutes=1)))
    assert result.due_at == NOW + timedelta(minutes=4)


def test_outside_calling_hours_the_call_moves_to_the_next_opening(runtime):
    # 03:00 UTC Tuesday is 19:00 Monday in California... and 22:00 in New York.
    night = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    result = register(runtime, ended(phone="+12125550123", ended_at=night), now=night)
    assert result.due_at == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in New York


def test_a_call_whose_window_opens_after_validity_is_suppressed(runtime):
    evening = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)  # 19:30 in New York
    with runtime.db.session():
        pass
    result = register(
        runtime,
        ended(phone="+12125550123", ended_at=evening - timedelta(hours=23, minutes=50)),
        now=evening + timedelta(hours=1),
    )
    assert result.reason == "validity_expired"
    assert stored(runtime, result.request_id).state is RequestState.SUPPRESSED


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (ended(survey="no-such-survey"), "unknown_survey"),
        (ended(phone="+1 415"), "invalid_phone"),
        (ended(source_call_id=""), "invalid_field"),
        (ended(ended_at=datetime(2026, 11, 23, 14, 0)), "invalid_field"),
        (ended(language="english please"), "invalid_field"),
        (ended(agent="x" * 201), "invalid_field"),
    ],
)
def test_invalid_calls_are_rejected_and_write_nothing(runtime, call, reason):
    result = register(runtime, call)
    assert (result.accepted, result.reason, result.request_id) == (False, reason, None)
    assert result.detail
    assert count_requests(runtime) == 0


def test_the_same_source_call_is_never_surveyed_twice(runtime):
    register(runtime, ended())
    result = register(runtime, ended(phone="+14155550199"))
    assert result.reason == "duplicate_source_call_id"
    assert count_requests(runtime) == 1


def test_suppressed_calls_are_stored_with_their_reason(runtime):
    with runtime.db.session() as session:
        session.add(OptOut(phone="+14155550123", source="api"))
    result = register(runtime, ended(phone="+1 415 555 0123"))
    assert result.reason == "opted_out"
    request = stored(runtime, result.request_id)
    assert (request.state, request.suppression_reason) == (RequestState.SUPPRESSED, "opted_out")


def test_a_second_call_for_a_number_with_a_survey_under_way_is_suppressed(runtime):
    assert register(runtime, ended()).accepted
    result = register(runtime, ended(source_call_id="crm-2"))
    assert result.reason == "survey_under_way"
