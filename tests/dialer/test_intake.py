from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from aftercall.models import OptOut, RequestState, SurveyRequest
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


def ended(**overrides):
    values = dict(phone="+14155550123", source_call_id="crm-1", ended_at=ENDED, agent="alice")
    return CallEnded(**(values | overrides))


def register(runtime, call):
    with runtime.db.session() as session:
        return register_call(session, runtime.catalog, call, default_survey="post-call")


def count_requests(runtime):
    with runtime.db.session() as session:
        return session.scalar(select(func.count(SurveyRequest.id)))


def test_an_accepted_call_becomes_a_pending_request_with_its_survey_version(runtime):
    request = register(runtime, ended(phone="+1 (415) 555-0123", metadata={"ticket": "T-9"}))
    assert request.phone == "+14155550123"
    assert request.state is RequestState.PENDING
    assert request.survey_name == "post-call"
    assert request.survey_version_id is not None
    assert request.extra == {"ticket": "T-9"}
    assert request.call_ended_at == ENDED.astimezone(UTC)


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (ended(survey="no-such-survey"), Rejection.UNKNOWN_SURVEY),
        (ended(phone="+1 415"), Rejection.INVALID_PHONE),
        (ended(source_call_id=""), Rejection.INVALID_FIELD),
        (ended(ended_at=datetime(2026, 11, 23, 14, 0)), Rejection.INVALID_FIELD),
    ],
)
def test_rejected_calls_write_nothing(runtime, call, reason):
    with pytest.raises(IntakeRejected) as error:
        register(runtime, call)
    assert error.value.reason is reason
    assert count_requests(runtime) == 0


def test_the_same_source_call_is_never_surveyed_twice(runtime):
    register(runtime, ended())
    with pytest.raises(IntakeRejected) as error:
        register(runtime, ended(phone="+14155550199"))
    assert error.value.reason is Rejection.DUPLICATE
    assert count_requests(runtime) == 1


def test_opted_out_numbers_are_refused(runtime):
    with runtime.db.session() as session:
        session.add(OptOut(phone="+14155550123", source="api"))
    with pytest.raises(IntakeRejected) as error:
        register(runtime, ended(phone="+1 415 555 0123"))
    assert error.value.reason is Rejection.OPTED_OUT
    assert count_requests(runtime) == 0
