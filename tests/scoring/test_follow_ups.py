"""Follow-ups: which answer sets open one, once; who sees which; last writer wins."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.db import utcnow
from core.models import (
    Answer,
    CallAttempt,
    FollowUp,
    FollowUpChange,
    RequestState,
    SurveyRequest,
    User,
)
from core.retention import forget_customer
from core.survey import Condition, FollowUpRule, SurveyDefinition
from core.survey_versions import version_for
from scoring import follow_ups
from scoring.follow_ups import Change, FollowUpError, Given, ListQuery, Viewer

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
ADMIN = Viewer("root", "admin")


def given(*answers: tuple[str, str, int | None]) -> list[Given]:
    return [Given(key, kind, value, kind == "comment") for key, kind, value in answers]


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ((("nps", "nps", 6),), ["nps 6 <= 6"]),
        ((("nps", "nps", 7),), []),
        ((("csat", "csat", 2),), ["csat 2 <= 2"]),
        ((("csat", "csat", 3),), []),
        ((("likely", "nps", 0), ("sat", "csat", 1)), ["likely 0 <= 6", "sat 1 <= 2"]),
        ((("ces", "ces", 1),), []),
        ((), []),
    ],
)
def test_the_default_rule_is_nps_6_or_less_or_csat_2_or_less(answers, expected):
    assert follow_ups.flags(FollowUpRule(), given(*answers), opted_out=False) == expected


def test_a_survey_s_own_rule_replaces_the_default():
    rule = FollowUpRule(when=(Condition("ces", "<=", 2),), comment=True)
    answers = given(("nps", "nps", 3), ("ces", "ces", 2), ("improve", "comment", None))
    assert follow_ups.flags(rule, answers, opted_out=False) == ["ces 2 <= 2", "comment"]
    assert follow_ups.flags(rule, given(("nps", "nps", 3)), opted_out=False) == []


def test_an_opt_out_after_a_low_score_when_the_survey_asks():
    rule = FollowUpRule(when=(Condition("nps", "<", 0),), opt_out_after_low_score=True)
    assert follow_ups.flags(rule, given(("nps", "nps", 2)), opted_out=True) == [
        "opted out after nps 2"
    ]
    assert follow_ups.flags(rule, given(("nps", "nps", 9)), opted_out=True) == []


def test_a_comment_opens_one_only_with_text():
    rule = FollowUpRule(comment=True)
    empty = [Given("improve", "comment", None, False)]
    assert follow_ups.flags(rule, empty, opted_out=False) == []


@pytest.fixture
def survey_request(runtime):
    """A finished survey with answers, as the survey call leaves it."""

    def make(*answers: tuple[str, str, int | None], team="north", is_test=False, **fields):
        with runtime.db.session() as session:
            definition = runtime.catalog.get("post-call")
            version = version_for(session, definition)
            count = session.scalar(select(func.count(SurveyRequest.id)))
            request = SurveyRequest(
                phone=fields.pop("phone", "+14155550123"),
                source_call_id=f"crm-{count + 1}",
                agent="alice",
                queue="billing",
                team=team,
                call_ended_at=NOW - timedelta(hours=1),
                survey_name="post-call",
                survey_version_id=version.id,
                state=fields.pop("state", RequestState.COMPLETED),
                is_test=is_test,
            )
            session.add(request)
            session.flush()
            attempt = CallAttempt(request_id=request.id, number=1, status="completed")
            session.add(attempt)
            session.flush()
            for key, kind, value in answers:
                session.add(
                    Answer(
                        request_id=request.id,
                        attempt_id=attempt.id,
                        survey_version_id=version.id,
                        question_key=key,
                        kind=kind,
                        value=value,
                        transcript="too slow" if kind == "comment" else None,
                    )
                )
            return request.id

    return make


def open_one(runtime, request_id, owners=None):
    with runtime.db.session() as session:
        follow_up = follow_ups.open_follow_up(
            session, request_id, now=NOW, owners=owners or {"north": "carol"}
        )
        return None if follow_up is None else follow_up.id


def test_opening_is_idempotent_and_owned_by_the_team_s_lead(runtime, survey_request):
    request_id = survey_request(("nps", "nps", 3), ("csat", "csat", 4))
    first = open_one(runtime, request_id)
    assert open_one(runtime, request_id) == first
    with runtime.db.session() as session:
        (row,) = session.scalars(select(FollowUp)).all()
        assert (row.owner, row.status, row.reason) == ("carol", "new", "nps 3 <= 6")
        assert row.due_at == NOW + timedelta(hours=48)
        (opened,) = session.scalars(select(FollowUpChange)).all()
        assert (opened.field, opened.actor, opened.source) == ("opened", "system", "system")


def test_a_happy_customer_opens_none(runtime, survey_request):
    assert open_one(runtime, survey_request(("nps", "nps", 9), ("csat", "csat", 5))) is None


def test_a_team_without_a_lead_leaves_it_unassigned(runtime, survey_request):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 0), team="south"))
    with runtime.db.session() as session:
        assert session.get(FollowUp, follow_up_id).owner is None


def test_the_sweep_opens_what_ended_and_nothing_twice(runtime, survey_request):
    flagged = survey_request(("nps", "nps", 1))
    survey_request(("nps", "nps", 10))
    survey_request(("nps", "nps", 2), state=RequestState.IN_PROGRESS)  # not over yet
    assert follow_ups.sweep(runtime, NOW) == 1
    assert follow_ups.sweep(runtime, NOW) == 0
    with runtime.db.session() as session:
        assert session.scalars(select(FollowUp.request_id)).all() == [flagged]


def test_racing_openers_open_one(runtime, survey_request):
    request_id = survey_request(("nps", "nps", 3))
    barrier = threading.Barrier(2)
    ids = []

    def race():
        barrier.wait()
        ids.append(open_one(runtime, request_id))

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(FollowUp.id))) == 1
    assert len(set(ids)) == 1


def test_who_sees_which(runtime, survey_request):
    north = open_one(runtime, survey_request(("nps", "nps", 3), team="north"))
    south = open_one(runtime, survey_request(("nps", "nps", 3), team="south"))
    test_call = open_one(runtime, survey_request(("nps", "nps", 3), is_test=True))
    lead = Viewer("carol", "supervisor", frozenset({"north"}))
    with runtime.db.session() as session:

        def seen(viewer):
            rows, total = follow_ups.listing(session, ListQuery(), viewer, NOW)
            assert total == len(rows)
            return {row.id for row in rows}

        assert seen(ADMIN) == {north, south}  # never a test call's
        assert test_call not in seen(ADMIN)
        assert seen(lead) == {north}
        assert seen(Viewer("dave", "supervisor")) == set()  # leads no team
        assert seen(Viewer("ana", "analyst", frozenset({"north"}))) == set()
        assert follow_ups.find(session, south, lead) is None


def test_overdue_first_then_by_due_time(runtime, survey_request):
    ids = [open_one(runtime, survey_request(("nps", "nps", 3))) for _ in range(3)]
    with runtime.db.session() as session:
        rows = {row.id: row for row in session.scalars(select(FollowUp))}
        rows[ids[0]].due_at = NOW + timedelta(hours=5)
        rows[ids[1]].due_at = NOW - timedelta(hours=1)  # overdue
        rows[ids[2]].due_at = NOW + timedelta(hours=1)
    with runtime.db.session() as session:
        page, _ = follow_ups.listing(session, ListQuery(), ADMIN, NOW)
        assert [row.id for row in page] == [ids[1], ids[2], ids[0]]
        overdue, total = follow_ups.listing(session, ListQuery(overdue=True), ADMIN, NOW)
        assert [row.id for row in overdue] == [ids[1]] and total == 1


def test_changes_are_recorded_and_stamp_contact_and_closing(runtime, survey_request):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    later = NOW + timedelta(hours=2)
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        follow_ups.update(
            session, row, Change(owner="dave", status="contacted"),
            actor="carol", source="dashboard", at=later,
        )  # fmt: skip
        follow_ups.add_note(session, row, "Called, will refund", author="carol",
                            source="dashboard", at=later)  # fmt: skip
        follow_ups.update(session, row, Change(status="resolved"), actor="dave",
                          source="dashboard", at=later + timedelta(hours=1))  # fmt: skip
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        assert (row.owner, row.status) == ("dave", "resolved")
        assert row.first_contacted_at == later
        assert row.closed_at == later + timedelta(hours=1)
        fields = [(c.field, c.old_value, c.new_value, c.actor) for c in follow_ups.history(
            session, follow_up_id)]  # fmt: skip
        assert fields == [
            ("opened", None, "nps 3 <= 6", "system"),
            ("owner", "carol", "dave", "carol"),
            ("status", "new", "contacted", "carol"),
            ("note", None, "Called, will refund", "carol"),
            ("status", "contacted", "resolved", "dave"),
        ]


def test_an_older_update_loses_to_a_newer_one_and_is_kept_in_history(runtime, survey_request):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        follow_ups.update(session, row, Change(status="resolved"), actor="carol",
                          source="dashboard", at=NOW + timedelta(hours=3))  # fmt: skip
        echo = follow_ups.update(
            session, row, Change(status="contacted"),
            actor="api:zendesk", source="api", at=NOW + timedelta(hours=2),
        )  # fmt: skip
        assert not echo.applied
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        assert row.status == "resolved"
        last = follow_ups.history(session, follow_up_id)[-1]
        assert (last.new_value, last.applied, last.source) == ("contacted", False, "api")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (Change(status="closed"), "status must be one of"),
        (Change(owner="x" * 101), "owner is longer"),
    ],
)
def test_bad_changes_are_refused(runtime, survey_request, change, message):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        with pytest.raises(FollowUpError, match=message):
            follow_ups.update(session, row, change, actor="carol", source="dashboard", at=NOW)


@pytest.mark.parametrize("body", ["", "   ", "x" * 4001, "a\x00b"])
def test_bad_notes_are_refused(runtime, survey_request, body):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        with pytest.raises(FollowUpError):
            follow_ups.add_note(session, row, body, author="carol", source="dashboard", at=NOW)


def test_a_user_s_teams(runtime):
    with runtime.db.session() as session:
        user = User(username="carol", password_hash="x", role="supervisor")
        session.add(user)
        session.flush()
        follow_ups.set_teams(session, user.id, ["north", " south ", "north", ""])
        assert follow_ups.teams_led(session, user.id) == {"north", "south"}
        follow_ups.set_teams(session, user.id, [])
        assert follow_ups.teams_led(session, user.id) == frozenset()


def test_a_survey_definition_keeps_its_digest_without_follow_up_settings():
    data = {"name": "s", "questions": [{"key": "nps", "kind": "nps", "prompt": {"en": "?"}}]}
    plain = SurveyDefinition.from_dict(data)
    assert "follow_up" not in plain.to_dict()
    flagged = SurveyDefinition.from_dict({**data, "follow_up": {"when": ["nps <= 8"]}})
    assert flagged.to_dict()["follow_up"]["when"] == ["nps <= 8"]
    assert flagged.content_sha256() != plain.content_sha256()


def test_reassigning_a_closed_follow_up_keeps_its_closing_time(runtime, survey_request):
    follow_up_id = open_one(runtime, survey_request(("nps", "nps", 3)))
    resolved_at = NOW + timedelta(hours=5)
    with runtime.db.session() as session:
        row = session.get(FollowUp, follow_up_id)
        follow_ups.update(session, row, Change(status="resolved"), actor="carol",
                          source="dashboard", at=resolved_at)  # fmt: skip
        follow_ups.update(session, row, Change(owner="dave"), actor="admin",
                          source="dashboard", at=resolved_at + timedelta(days=1))  # fmt: skip
        assert row.closed_at == resolved_at
        follow_ups.update(session, row, Change(status="contacted"), actor="dave",
                          source="dashboard", at=resolved_at + timedelta(days=2))  # fmt: skip
        assert row.closed_at is None


def test_an_anonymised_old_detractor_opens_nothing(runtime, survey_request):
    request_id = survey_request(("nps", "nps", 1), phone="+14155550188")
    with runtime.db.session() as session:
        forget_customer(session, "+14155550188")
    assert follow_ups.sweep(runtime, NOW) == 0
    with runtime.db.session() as session:
        assert session.scalar(select(FollowUp.id).where(FollowUp.request_id == request_id)) is None


def test_the_sweep_remembers_how_far_it_got(runtime, survey_request, redis_url):
    runtime.settings = runtime.settings.with_overrides(redis_url=redis_url)
    runtime.redis.delete(follow_ups.SWEEP_KEY)
    survey_request(("nps", "nps", 1))
    assert follow_ups.sweep(runtime, NOW) == 1
    mark = datetime.fromisoformat(runtime.redis.get(follow_ups.SWEEP_KEY).decode())
    assert abs((mark - utcnow()).total_seconds()) < 60
