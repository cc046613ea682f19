"""The README's main command: a whole simulated campaign, deterministic per seed."""

from __future__ import annotations

from datetime import UTC, datetime
from random import Random

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from aftercall.cli import main
from aftercall.demo import (
    demo_contact_records,
    demo_settings,
    finished_support_calls,
    run_demo,
)
from core.db import Database
from core.models import (
    Attribution,
    Channel,
    ContactLeg,
    FollowUp,
    RequestState,
    SmsConversation,
    SmsMessage,
    SurveyMode,
    SurveyRequest,
)

pytestmark = pytest.mark.e2e


def test_same_seed_same_campaign(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    first = run_demo(30, 5, demo_settings())
    second = run_demo(30, 5, demo_settings())
    assert first == second
    assert sum(first.outcomes.values()) + first.rejected == 30
    assert first.outcomes.get(RequestState.COMPLETED, 0) > 0
    assert first.outcomes.get(RequestState.CALLING, 0) == 0  # every call reached an end
    assert "Example Company" in first.sample_transcript[0]


def test_the_demo_surveys_a_share_of_its_customers_in_the_call(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = run_demo(40, 5, demo_settings())
    modes = {row.group["mode"]: row for row in result.modes}
    assert set(modes) == {"callback", "in_call"}
    in_call, callback = modes["in_call"], modes["callback"]
    # Every in-call request the rules accepted was transferred and reached.
    assert in_call.placed == 0 and in_call.reached > 0
    assert in_call.reached + sum(in_call.suppressed.values()) == in_call.received
    assert in_call.completed > 0 and callback.completed > 0
    assert callback.placed > 0
    db = Database(f"sqlite:///{tmp_path / 'aftercall-demo.db'}")
    with db.session() as session:
        found = dict(
            session.execute(
                select(SurveyRequest.attribution, func.count())
                .where(
                    SurveyRequest.mode == SurveyMode.IN_CALL,
                    SurveyRequest.state != RequestState.SUPPRESSED,
                )
                .group_by(SurveyRequest.attribution)
            ).all()
        )
    db.dispose()
    assert result.spoken.spoken > 0  # some customers say their answers
    # Tokens (by URL and by DTMF), number matches and late events, all attributed.
    assert set(found) == {Attribution.TOKEN, Attribution.NUMBER, Attribution.LATE_EVENT}


def test_demo_command_prints_outcomes_and_scores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["demo", "--calls", "12", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "Outcomes:" in result.output
    assert "Called back or surveyed in the call:" in result.output
    assert "Answers said aloud rather than keyed:" in result.output
    assert "SMS fallback: " in result.output
    assert "Follow-ups opened for unhappy customers: " in result.output
    assert "Scores by agent:" in result.output
    assert (tmp_path / "aftercall-demo.db").exists()


def test_the_demo_can_play_an_amazon_connect_contact_center(tmp_path, monkeypatch):
    """`--source connect`: the calls arrive as contact records through Firehose's HTTP
    endpoint (some transferred, legs shuffled) and each becomes one survey rating the
    call's last agent: the same campaign as through the intake API."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    by_api = run_demo(30, 5, demo_settings())
    by_connect = run_demo(30, 5, demo_settings(), source="connect")
    assert by_connect.outcomes == by_api.outcomes
    assert by_connect.agents == by_api.agents
    db = Database(f"sqlite:///{tmp_path / 'aftercall-demo.db'}")
    with db.session() as session:
        assert session.scalar(select(func.count(ContactLeg.id))) > 0  # really through Firehose
    db.dispose()
    calls = finished_support_calls(30, 5, datetime(2026, 12, 7, 18, 0, tzinfo=UTC))
    rng = Random(1)
    legs = [len(demo_contact_records(call, rng)) for call in calls]
    assert set(legs) == {1, 2}  # some of the campaign's calls are transferred


def test_the_demo_command_takes_its_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["demo", "--calls", "6", "--source", "connect"])
    assert result.exit_code == 0, result.output
    assert "Amazon Connect contact records" in result.output
    assert "Outcomes:" in result.output


def test_the_demo_texts_customers_who_never_picked_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = run_demo(40, 5, demo_settings())
    lift = result.fallback
    assert lift.texted > 0 and lift.by_text > 0
    assert lift.rate_with > lift.rate_without
    db = Database(f"sqlite:///{tmp_path / 'aftercall-demo.db'}")
    with db.session() as session:
        texted = session.scalars(
            select(SurveyRequest).where(SurveyRequest.channel == Channel.SMS_FALLBACK)
        ).all()
        # Every texted customer was called first (and never reached), then texted once.
        assert all(request.calls_placed > 0 for request in texted)
        assert session.scalar(select(func.count(SmsConversation.id))) == len(texted)
        # Nothing is left waiting: replies, expiry or delivery settled every conversation.
        assert all(request.state not in OPEN for request in texted)
        inbound = session.scalars(
            select(SmsMessage.purpose).where(SmsMessage.direction == "inbound")
        ).all()
    db.dispose()
    assert "answer" in inbound


OPEN = (RequestState.SCHEDULED, RequestState.TEXTING, RequestState.IN_PROGRESS)


def test_the_demo_opens_follow_ups_for_its_unhappy_customers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = run_demo(40, 5, demo_settings())
    assert sum(result.follow_ups.values()) > 0
    assert set(result.follow_ups) <= {"", "demo-admin"}
    db = Database(f"sqlite:///{tmp_path / 'aftercall-demo.db'}")
    with db.session() as session:
        rows = session.scalars(select(FollowUp)).all()
        # Only unhappy customers: every follow-up's request has a low score.
        for row in rows:
            assert row.reason and ("<= 6" in row.reason or "<= 2" in row.reason)
            assert (row.owner == "demo-admin") is (row.team == "north")
    db.dispose()
