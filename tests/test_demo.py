"""The README's main command: a whole simulated campaign, deterministic per seed."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from random import Random
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from aftercall.cli import main
from aftercall.demo import (
    DEMO_DAYS,
    ENDED_BETWEEN,
    IMPROVING_AGENT,
    customer_feeling,
    demo_contact_records,
    demo_settings,
    demo_start_time,
    finished_support_calls,
    run_demo,
    simulated_deployment,
)
from aftercall.web.dashboard.views import DEFAULT_DAYS
from core.db import Database
from core.models import (
    Answer,
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
from phonesim import Question, read_question
from phonesim.texter import NONSENSE

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
    # Scores with their margin of error, small samples marked rather than hidden.
    assert "n<30" not in result.output
    assert " ±" in result.output and "* fewer than 30 answers" in result.output
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


def test_the_demo_customers_press_only_keys_the_question_asked_for(tmp_path, monkeypatch):
    """Every key the demo's customers press answers the question on its own scale (a
    digit of it, "0" after the "1" of an NPS 10, 1 or 2 to a confirmation, "*" to opt
    out), every number they say is on it, and their answers hang together: promoters
    are mostly satisfied, detractors mostly not."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = demo_settings()
    start = demo_start_time(datetime.now(UTC).date())
    with simulated_deployment(settings, 3, start) as deployment:
        deployment.run_campaign(40)
        survey = deployment.runtime.catalog.get(settings.default_survey)
        scales = {q.key: q.kind.scale for q in survey.questions if q.kind.scale is not None}
        posts = [
            (urlsplit(fetch.url), fetch.params)
            for call in deployment.network.calls
            for fetch in call.documents
            if fetch.reason == "gather" and "/questions/" in fetch.url  # not a transfer's token
        ]
        texted = _scale_replies(deployment.network.messages)
    assert posts
    wrong = []
    for url, params in posts:
        path = url.path.split("/questions/")[-1].split("/")
        key, confirming = path[0], path[-1] == "confirm"
        low, high = scales[key]
        if confirming:
            asked = {"1", "2"}
        elif parse_qs(url.query).get("stage") == ["after-one"]:
            asked = {"0"}
        else:
            asked = {str(value) for value in range(low, min(high, 9) + 1)}
        digits, said = params.get("Digits", ""), params.get("SpeechResult")
        if digits and digits not in asked | {"*"}:
            wrong.append((key, "pressed", digits))
        if said is not None and not confirming and not (low <= int(said) <= high):
            wrong.append((key, "said", said))
    # Texted customers too: every number they reply to a scale question is on it (bar
    # the nonsense a confused customer texts on purpose).
    assert texted
    wrong += [(question, "texted", reply) for question, reply, value in texted if value is None]
    assert not wrong
    db = Database(f"sqlite:///{tmp_path / 'aftercall-demo.db'}")
    with db.session() as session:
        rows = session.execute(select(Answer.request_id, Answer.question_key, Answer.value)).all()
    db.dispose()
    by_request: dict[int, dict[str, int]] = {}
    for request_id, key, value in rows:
        by_request.setdefault(request_id, {})[key] = value
    csat = {"promoter": [], "detractor": []}
    for answers in by_request.values():
        if "nps" in answers and "csat" in answers:
            group = (
                "promoter" if answers["nps"] >= 9 else "detractor" if answers["nps"] <= 6 else ""
            )
            if group:
                csat[group].append(answers["csat"] >= 4)
    assert csat["promoter"] and csat["detractor"]
    assert sum(csat["promoter"]) / len(csat["promoter"]) >= 0.8
    assert sum(csat["detractor"]) / len(csat["detractor"]) <= 0.5


NUMBER_WORDS = {
    word: value
    for words in (
        "zero one two three four five six seven eight nine ten",
        "cero uno dos tres cuatro cinco seis siete ocho nueve diez",
        "zero jeden dwa trzy cztery pięć sześć siedem osiem dziewięć dziesięć",
    )
    for value, word in enumerate(words.split())
}


def _scale_replies(messages) -> list[tuple[str, str, int | None]]:
    """Each customer's reply to a text asking for a number on a scale: (the question,
    the reply, the number it gives if that is on the scale, else None)."""
    asked: dict[str, Question] = {}
    replies = []
    for message in messages:
        if message.direction != "inbound":
            question = read_question(message.body)
            if question is not None:
                asked[message.to] = question
            continue
        question, reply = asked.get(message.from_), message.body.strip()
        if question is None or question.kind != "scale":
            continue
        if reply.upper() in ("HELP", "STOP", "SKIP") or reply in NONSENSE:
            continue
        found = re.search(r"\d+", reply)
        word = reply.lower().rstrip("!")
        value = int(found[0]) if found else NUMBER_WORDS.get(word)
        on_scale = value is not None and question.low <= value <= question.high
        replies.append((f"{question.low}-{question.high}", reply, value if on_scale else None))
    return replies


def test_the_demo_support_calls_spread_over_four_weeks():
    now = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
    calls = list(finished_support_calls(400, 5, now))
    days = Counter(call.ended_at.date() for call in calls)
    assert min(days) >= (now - timedelta(days=DEMO_DAYS - 1)).date() and max(days) <= now.date()
    assert len(days) >= 25
    weekday = sum(n for day, n in days.items() if day.weekday() < 5) / 20
    weekend = sum(n for day, n in days.items() if day.weekday() >= 5) / 8
    assert weekday > 2 * weekend
    assert [call.ended_at for call in calls] == sorted(call.ended_at for call in calls)
    # The improving agent's customers: many detractors in the first week, few in the last.
    rng, first = Random(1), min(days)
    first_week = [
        c for c in calls if c.agent == IMPROVING_AGENT and (c.ended_at.date() - first).days < 7
    ]
    last_week = [
        c for c in calls if c.agent == IMPROVING_AGENT and (c.ended_at.date() - first).days >= 21
    ]

    def detractors(group: list) -> float:
        feelings = [customer_feeling(call, first, rng).target for call in group * 20]
        return feelings.count("detractor") / len(feelings)

    assert detractors(first_week) > detractors(last_week) + 0.2


@pytest.mark.parametrize("days_on", range(14))
def test_the_demo_campaign_ends_no_later_than_today(days_on):
    """Run on any day of the week, the campaign's last day is today or just before it (a
    weekday, for the calling hours), never tomorrow, and its four weeks of calls lie in
    the dashboard's default window up to today, inside the hours calls end in."""
    today = date(2026, 11, 30) + timedelta(days=days_on)
    start = demo_start_time(today)
    assert start.date() <= today and (today - start.date()).days <= 2
    assert start.weekday() < 5 and start.time() == time(18, 0) and start.tzinfo is UTC
    calls = list(finished_support_calls(300, days_on, start))
    window = (today - timedelta(days=DEFAULT_DAYS - 1), today)
    assert all(window[0] <= call.ended_at.date() <= window[1] for call in calls)
    assert all(ENDED_BETWEEN[0] <= call.ended_at.time() <= ENDED_BETWEEN[1] for call in calls)


def test_the_demo_campaign_reports_many_days(tmp_path, monkeypatch):
    """The campaign runs day by day, so intake's rules take the month's calls as they
    end (none suppressed for having ended too long ago), and reports see many days."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    run_demo(40, 1, demo_settings())
    db = Database(f"sqlite:///{tmp_path / 'aftercall-demo.db'}")
    with db.session() as session:
        ended = session.scalars(select(SurveyRequest.call_ended_at)).all()
        answered = session.scalar(select(func.count(Answer.id)))
    db.dispose()
    assert len({moment.date() for moment in ended}) >= 12
    assert answered > 0
