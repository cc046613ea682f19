"""The channel as a report dimension, and texts in the funnel, on every way out.

Surveys by call (voice), by text (sms) and by text after unanswered calls (sms_fallback)
side by side: grouped and filtered by channel (from the rollup, keyed by channel since
migration 0018, as from the tables), each channel's funnel, response rates and scores. A texted request is placed
once its conversation exists (its first text went to Twilio) and reached once the
customer replies; one still `texting` or expired with `no_reply` is not reached; a
survey text that could not be delivered counts as undelivered. Test calls count
nowhere; answers stored before texts existed (no channel) are voice. In the report
functions, the API (checked against the OpenAPI file), the CLI's table, CSV and JSON.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from aftercall.cli import main
from core import apikeys
from core.models import (
    Answer,
    Channel,
    RequestState,
    SmsConversation,
    SurveyRequest,
)
from scoring import rollup
from scoring.detractors import detractors
from scoring.filters import parse_report_query
from scoring.formats import CSV_FIGURES, to_csv, to_table
from scoring.report import (
    CHANNELS,
    ReportError,
    ReportQuery,
    _Plan,
    regroup,
    report,
    spoken_share,
    totals,
)
from tests.openapi import check_response
from tests.scoring.test_report import START, _version_id, add

SCORES = "/api/v1/reports/scores"
DETRACTORS = "/api/v1/reports/detractors"
UTC = ZoneInfo("UTC")


def add_texted(session, index, *, channel=Channel.SMS, agent="alice", state=RequestState.COMPLETED,
               outcome="completed", answers=(), calls=0, texted=True, is_test=False,
               ended=START):  # fmt: skip
    """A request surveyed by text as sms.conversation leaves it: its conversation (once
    its first text went out, `texted`) with the outcome it closed with (None: still
    open), and its answers given in that conversation (no attempt, input "text").
    `calls`: the unanswered calls an SMS fallback was placed after."""
    request = SurveyRequest(
        phone=f"+1415557{index:04d}", source_call_id=f"text-{index}", agent=agent,
        queue="billing", team="north", language="en", call_ended_at=ended,
        survey_name="post-call", state=state, calls_placed=calls, channel=channel,
        is_test=is_test,
    )  # fmt: skip
    session.add(request)
    session.flush()
    if not texted:
        return request
    version_id = _version_id(session)
    conversation = SmsConversation(
        request_id=request.id, phone=request.phone, sender="+15005550006",
        survey_version_id=version_id, language="en", expires_at=ended + timedelta(days=1),
        closed_at=None if outcome is None else ended + timedelta(hours=2), outcome=outcome,
    )  # fmt: skip
    session.add(conversation)
    session.flush()
    for key, kind, value in answers:
        session.add(
            Answer(request_id=request.id, conversation_id=conversation.id,
                   survey_version_id=version_id, question_key=key, kind=kind, value=value,
                   input="text")
        )  # fmt: skip
    return request


def seed(session) -> None:
    """Four calls, eight texts (one of them a test call's) and four fallbacks, all of
    1 March 2026; the figures below."""
    add(session, 1, agent="alice", attempts=2, answers=[("nps", "nps", 10), ("csat", "csat", 5)])
    add(session, 2, agent="bob", state=RequestState.PARTIAL, answers=[("nps", "nps", 3)])
    add(session, 3, agent="bob", state=RequestState.NO_ANSWER, attempts=3)
    add(session, 4, agent="carol", state=RequestState.SUPPRESSED, attempts=0,
        reason="not_sampled")  # fmt: skip

    add_texted(session, 1, answers=[("nps", "nps", 9), ("csat", "csat", 4)])
    # Replied once, the survey goes on: reached.
    add_texted(session, 2, agent="bob", state=RequestState.IN_PROGRESS, outcome=None,
               answers=[("nps", "nps", 10)])  # fmt: skip
    # Texted, no reply yet: placed, not reached.
    add_texted(session, 3, agent="bob", state=RequestState.TEXTING, outcome=None)
    add_texted(session, 4, state=RequestState.NO_REPLY, outcome="expired")
    add_texted(session, 5, agent="carol", state=RequestState.FAILED, outcome="undelivered")
    # Replied STOP: reached, and opted out.
    add_texted(session, 6, state=RequestState.OPTED_OUT, outcome="opted_out")
    # Not texted yet: received only.
    add_texted(session, 7, agent="bob", state=RequestState.SCHEDULED, texted=False)
    # An admin's test call by text: counts nowhere.
    add_texted(session, 8, answers=[("nps", "nps", 0)], is_test=True)

    fallback = Channel.SMS_FALLBACK
    add_texted(session, 11, channel=fallback, calls=2, answers=[("nps", "nps", 8)])
    add_texted(session, 12, channel=fallback, agent="bob", calls=2, state=RequestState.NO_REPLY,
               outcome="expired")  # fmt: skip
    add_texted(session, 13, channel=fallback, agent="carol", calls=1, state=RequestState.FAILED,
               outcome="undelivered")  # fmt: skip
    # Answered the first question, then a later one could not be delivered.
    add_texted(session, 14, channel=fallback, calls=2, state=RequestState.PARTIAL,
               outcome="undelivered", answers=[("nps", "nps", 0)])  # fmt: skip


@pytest.fixture
def seeded(runtime):
    with runtime.db.session() as session:
        seed(session)
    return runtime


KEYS = ("received", "suppressed", "placed", "calls_placed", "answered", "reached", "completed",
        "partial", "opted_out", "texted", "undelivered", "no_reply", "response_rate",
        "response_rate_placed", "attempts_per_completed", "nps_responses", "nps",
        "csat_responses")  # fmt: skip


def figures(row) -> dict:
    return {key: row.to_json()[key] for key in KEYS}


VOICE = {
    "received": 4, "suppressed": 1, "placed": 3, "calls_placed": 6, "answered": 2, "reached": 2,
    "completed": 1, "partial": 1, "opted_out": 0, "texted": 0, "undelivered": 0, "no_reply": 0,
    "response_rate": 50.0, "response_rate_placed": 33.3, "attempts_per_completed": 2.0,
    "nps_responses": 2, "nps": 0.0, "csat_responses": 1,
}  # fmt: skip
SMS = {
    # Seven received (the test call aside); six texted, which places them; three
    # replied (completed, in progress, STOP), one still waits, one expired unanswered,
    # one could not be delivered.
    "received": 7, "suppressed": 0, "placed": 6, "calls_placed": 0, "answered": 3, "reached": 3,
    "completed": 1, "partial": 0, "opted_out": 1, "texted": 6, "undelivered": 1, "no_reply": 1,
    "response_rate": 33.3, "response_rate_placed": 16.7, "attempts_per_completed": 0.0,
    "nps_responses": 2, "nps": 100.0, "csat_responses": 1,
}  # fmt: skip
SMS_FALLBACK = {
    # Placed by their calls already (texting them places nothing more); undelivered
    # counts the partial survey whose later question bounced too.
    "received": 4, "suppressed": 0, "placed": 4, "calls_placed": 7, "answered": 2, "reached": 2,
    "completed": 1, "partial": 1, "opted_out": 0, "texted": 4, "undelivered": 2, "no_reply": 1,
    "response_rate": 50.0, "response_rate_placed": 25.0, "attempts_per_completed": 2.0,
    "nps_responses": 2, "nps": -50.0, "csat_responses": 0,
}  # fmt: skip
EXPECTED = {"voice": VOICE, "sms": SMS, "sms_fallback": SMS_FALLBACK}


# -- grouping and filtering ------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_by_channel_each_channel_has_its_own_funnel_and_scores(runtime):
    with runtime.db.session() as session:
        rows = report(session, ReportQuery(by=("channel",)))
        (everything,) = report(session, ReportQuery())
    assert [row.group for row in rows] == [
        {"channel": "sms"}, {"channel": "sms_fallback"}, {"channel": "voice"},
    ]  # fmt: skip
    assert {row.group["channel"]: figures(row) for row in rows} == EXPECTED
    # The channels partition the requests: their counts add up to the report without.
    assert totals(rows).to_json() == everything.to_json()
    assert (everything.received, everything.placed, everything.texted) == (15, 13, 10)
    assert (everything.undelivered, everything.no_reply) == (3, 2)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.usefixtures("seeded")
def test_filtering_by_channel(runtime, channel):
    with runtime.db.session() as session:
        (only,) = report(session, ReportQuery(channel=channel))
        by_agent = report(session, ReportQuery(by=("agent", "channel"), channel=channel))
        unhappy = detractors(session, ReportQuery(channel=channel))
    assert figures(only) == EXPECTED[channel]
    assert {row.group["channel"] for row in by_agent} == {channel}
    assert totals(by_agent).to_json() == only.to_json()
    expected_phones = {"voice": {"+14155550002"}, "sms": set(), "sms_fallback": {"+14155570014"}}
    assert {entry.phone for entry in unhappy} == expected_phones[channel]


@pytest.mark.usefixtures("seeded")
def test_answers_and_requests_agree_on_the_channel_of_every_group(runtime):
    """Scores come from the answers' copy of the channel, the funnel from the requests."""
    with runtime.db.session() as session:
        rows = report(session, ReportQuery(by=("agent", "channel")))
    groups = {(row.group["agent"], row.group["channel"]): row for row in rows}
    assert groups[("bob", "sms")].nps_distribution[10] == 1
    assert (groups[("bob", "sms")].received, groups[("bob", "sms")].texted) == (3, 2)
    assert groups[("alice", "sms_fallback")].nps_responses == 2
    assert all(row.nps_responses <= row.reached for row in rows)


def test_answers_without_a_copied_channel_count_as_voice(runtime):
    """An answer stored before texts existed has no channel (migration 0014 left them
    as they were): a call's, rather than a group of its own."""
    with runtime.db.session() as session:
        request = add(session, 1)
        session.flush()
        session.add(
            Answer(request_id=request.id, attempt_id=request.attempts[0].id,
                   survey_version_id=_version_id(session), question_key="nps", kind="nps",
                   value=9, call_ended_at=request.call_ended_at, agent="alice")
        )  # fmt: skip
    with runtime.db.session() as session:
        assert session.query(Answer.channel).scalar() is None
        rows = report(session, ReportQuery(by=("channel",)))
        (voice,) = report(session, ReportQuery(channel="voice"))
    assert [(row.group["channel"], row.nps_responses) for row in rows] == [("voice", 1)]
    assert voice.nps_responses == 1


@pytest.mark.usefixtures("seeded")
def test_texts_are_in_the_funnel_of_a_report_without_channel(runtime):
    """Whatever the grouping, and whether the rollup answers: by agent, each agent's
    texts; by week, the week's."""
    with runtime.db.session() as session:
        agents = {row.group["agent"]: row for row in report(session, ReportQuery(by=("agent",)))}
        (week,) = report(session, ReportQuery(by=("week",)))
    assert {name: (r.texted, r.undelivered, r.no_reply) for name, r in agents.items()} == {
        "alice": (5, 1, 1), "bob": (3, 0, 1), "carol": (2, 2, 0),
    }  # fmt: skip
    # Placed: alice's two calls, four texts and two fallbacks; bob's two calls, his two
    # texts and one fallback (his scheduled text is not placed yet); carol's two texts.
    assert {name: r.placed for name, r in agents.items()} == {"alice": 6, "bob": 5, "carol": 2}
    assert (week.group["week"], week.texted, week.placed) == ("2026-W09", 10, 13)
    assert all(row.has_texts for row in agents.values())


def test_a_voice_only_report_has_no_texts(runtime):
    with runtime.db.session() as session:
        add(session, 1, answers=[("nps", "nps", 9)])
        add(session, 2, state=RequestState.NO_ANSWER, attempts=2)
    with runtime.db.session() as session:
        (row,) = report(session, ReportQuery())
        (voice,) = report(session, ReportQuery(by=("channel",)))
    assert (row.texted, row.undelivered, row.no_reply, row.placed) == (0, 0, 0, 2)
    assert not row.has_texts and not voice.has_texts
    assert "texted" not in to_table([row], ())
    assert to_table([row], (), texts=True).splitlines()[0].split()[-3:] == [
        "undelivered",
        "no",
        "reply",
    ]


@pytest.mark.parametrize(
    ("state", "reached"),
    [
        (RequestState.TEXTING, False),
        (RequestState.NO_REPLY, False),
        (RequestState.FAILED, False),
        (RequestState.IN_PROGRESS, True),
        (RequestState.ABANDONED, True),
        (RequestState.PARTIAL, True),
        (RequestState.OPTED_OUT, True),
        (RequestState.COMPLETED, True),
    ],
)
def test_a_texted_customer_is_reached_once_they_reply(runtime, state, reached):
    with runtime.db.session() as session:
        add_texted(session, 1, state=state, outcome=None)
    with runtime.db.session() as session:
        (row,) = report(session, ReportQuery(channel="sms"))
    assert (row.placed, row.texted) == (1, 1)
    assert (row.answered, row.reached) == (int(reached), int(reached))
    assert row.no_reply == int(state is RequestState.NO_REPLY)


@pytest.mark.usefixtures("seeded")
def test_a_texted_test_call_counts_nowhere(runtime):
    with runtime.db.session() as session:
        (sms,) = report(session, ReportQuery(channel="sms"))
        by_channel = report(session, ReportQuery(by=("channel",)))
        unhappy = detractors(session, ReportQuery())
    assert (sms.received, sms.texted, sms.nps_responses) == (7, 6, 2)
    assert sum(row.received for row in by_channel) == 15
    assert "+14155570008" not in {entry.phone for entry in unhappy}


@pytest.mark.usefixtures("seeded")
def test_texted_answers_are_neither_spoken_nor_keyed(runtime):
    """The share of answers said aloud is among answers given in calls: the four keyed
    voice answers, none of the texted ones."""
    with runtime.db.session() as session:
        share = spoken_share(session, ReportQuery())
        texts = spoken_share(session, ReportQuery(channel="sms"))
    assert (share.answers, share.spoken) == (3, 0)
    assert (texts.answers, texts.spoken, texts.percent) == (0, 0, None)


def test_text_requests_a_week_apart_fall_in_their_own_periods(runtime):
    with runtime.db.session() as session:
        add_texted(session, 1, ended=START, answers=[("nps", "nps", 10)])
        add_texted(session, 2, ended=START + timedelta(days=7), state=RequestState.NO_REPLY,
                   outcome="expired")  # fmt: skip
        add(session, 3, ended=START + timedelta(days=7), answers=[("nps", "nps", 9)])
    with runtime.db.session() as session:
        rows = report(session, ReportQuery(by=("week", "channel")))
    assert [(r.group["week"], r.group["channel"], r.texted, r.no_reply, r.nps) for r in rows] == [
        ("2026-W09", "sms", 1, 0, 100.0),
        ("2026-W10", "sms", 1, 1, None),
        ("2026-W10", "voice", 0, 0, 100.0),
    ]


@pytest.mark.usefixtures("seeded")
def test_regrouping_adds_up_to_the_report_by_fewer_dimensions(runtime):
    with runtime.db.session() as session:
        both = report(session, ReportQuery(by=("mode", "channel")))
        by_mode = report(session, ReportQuery(by=("mode",)))
        by_channel = report(session, ReportQuery(by=("channel",)))
    assert [r.to_json() for r in regroup(both, ("mode",))] == [r.to_json() for r in by_mode]
    assert [r.to_json() for r in regroup(both, ("channel",))] == [r.to_json() for r in by_channel]


# -- the rollup ------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_the_rollup_answers_reports_by_and_for_a_channel_as_the_tables_do(runtime, monkeypatch):
    with runtime.db.session() as session:  # the rollup is on, on both databases
        assert rollup.covers(session, UTC, None, None, ("channel",), {})
        assert rollup.covers(session, UTC, None, None, (), {"channel": "sms"})
        # The text counters, the texts' share of placed and the spoken share included.
        for query in (ReportQuery(), ReportQuery(by=("agent",)), ReportQuery(by=("team", "day")),
                      ReportQuery(by=("channel",)), ReportQuery(by=("agent", "channel", "day")),
                      ReportQuery(by=("mode", "channel"))):  # fmt: skip
            assert _Plan(session, query).from_rollup, query
            from_rollup = [row.to_json() for row in report(session, query)]
            share = spoken_share(session, query)
            with monkeypatch.context() as patch:
                patch.setattr(rollup, "covers", lambda *args: False)
                from_tables = [row.to_json() for row in report(session, query)]
                assert spoken_share(session, query) == share, query
            assert from_rollup == from_tables, query
            assert sum(row["texted"] for row in from_rollup) == 10
        for query in (ReportQuery(channel="sms"), ReportQuery(by=("team",), channel="voice")):
            assert _Plan(session, query).from_rollup, query
            from_rollup = [row.to_json() for row in report(session, query)]
            share = spoken_share(session, query)
            with monkeypatch.context() as patch:
                patch.setattr(rollup, "covers", lambda *args: False)
                assert [row.to_json() for row in report(session, query)] == from_rollup, query
                assert spoken_share(session, query) == share, query


# -- reading a channel from a request ------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_parser_takes_each_channel(channel):
    query = parse_report_query({"channel": channel, "by": "channel, mode"}, UTC)
    assert (query.channel, query.by) == (channel, ("channel", "mode"))


@pytest.mark.parametrize("text", ["", "SMS", "text", " voice", "sms-fallback", "in_call", "x\x00"])
def test_the_parser_refuses_other_channels(text):
    with pytest.raises(ReportError) as error:
        parse_report_query({"channel": text}, UTC)
    assert error.value.parameter == "channel"
    assert "voice, sms, sms_fallback" in error.value.problem


# -- the API ---------------------------------------------------------------------------


@pytest.fixture
def auth(runtime) -> dict[str, str]:
    with runtime.db.session() as session:
        return {"Authorization": f"Bearer {apikeys.create_key(session, 'bi', ['reports'])}"}


def get(client, auth, path: str):
    response = client.get(path, headers=auth)
    body = response.get_json()
    check_response(path, "GET", response.status_code, body)
    return response.status_code, body


@pytest.mark.usefixtures("seeded")
def test_the_api_groups_and_filters_by_channel(client, auth):
    status, body = get(client, auth, f"{SCORES}?by=channel")
    assert status == 200
    rows = {row["channel"]: row for row in body["rows"]}
    assert {channel: {k: rows[channel][k] for k in KEYS} for channel in rows} == EXPECTED
    assert body["query"]["channel"] is None
    assert (body["total"]["received"], body["total"]["texted"]) == (15, 10)

    status, body = get(client, auth, f"{SCORES}?channel=sms_fallback&by=agent&since=2026-03-01")
    assert (status, body["query"]["channel"]) == (200, "sms_fallback")
    agents = {row["agent"]: (row["received"], row["undelivered"]) for row in body["rows"]}
    assert agents == {"alice": (2, 1), "bob": (1, 0), "carol": (1, 1)}

    status, body = get(client, auth, f"{SCORES}?by=agent&compare=previous&since=2026-03-01"
                                     "&until=2026-03-07&channel=sms")  # fmt: skip
    assert status == 200
    assert body["previous"]["query"]["channel"] == "sms"
    assert body["previous"]["total"]["texted"] == 0

    status, body = get(client, auth, f"{DETRACTORS}?channel=sms_fallback")
    assert status == 200
    assert [entry["answers"]["nps"] for entry in body["detractors"]] == [0]


@pytest.mark.usefixtures("seeded")
def test_every_api_row_carries_the_text_counters(client, auth):
    status, body = get(client, auth, f"{SCORES}?by=agent&channel=voice")
    assert status == 200
    assert all(
        (row["texted"], row["undelivered"], row["no_reply"]) == (0, 0, 0) for row in body["rows"]
    )
    assert all("channel" not in row for row in body["rows"])


@pytest.mark.parametrize("query", ["channel=", "channel=SMS", "channel=text", "by=channels"])
def test_the_api_refuses_other_channels(client, auth, query):
    status, body = get(client, auth, f"{SCORES}?{query}")
    assert status == 400
    assert body["error"]["code"] == "invalid_query"
    assert body["error"]["message"].startswith(("channel: ", "by: "))


# -- the CLI ---------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
def test_the_report_command_by_and_for_a_channel(runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    runner = CliRunner()
    as_json = runner.invoke(main, ["report", "--by", "channel", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    rows = {row["channel"]: row for row in json.loads(as_json.output)["rows"]}
    assert {channel: {k: rows[channel][k] for k in KEYS} for channel in rows} == EXPECTED

    table = runner.invoke(main, ["report", "--by", "agent", "--channel", "sms"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[-4:] == ["texted", "undelivered", "no", "reply"]
    cells = {line.split()[0]: line.split()[-3:] for line in lines[2:]}
    assert cells["alice"] == ["3", "0", "1"]
    assert cells["total"] == ["6", "1", "1"]

    voice = runner.invoke(main, ["report", "--by", "agent", "--channel", "voice"])
    assert voice.exit_code == 0, voice.output
    assert "texted" not in voice.output  # the table as it was before texts

    as_csv = runner.invoke(main, ["report", "--by", "team,channel", "--format", "csv"])
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [(r["channel"], r["texted"], r["undelivered"], r["no_reply"]) for r in parsed] == [
        ("sms", "6", "1", "1"), ("sms_fallback", "4", "2", "1"), ("voice", "0", "0", "0"),
    ]  # fmt: skip

    bad = runner.invoke(main, ["report", "--channel", "text"])
    assert bad.exit_code == 2
    assert "'text' is not one of 'voice', 'sms', 'sms_fallback'" in bad.output


def test_the_report_command_offers_channel(runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    help_text = " ".join(CliRunner().invoke(main, ["report", "--help"]).output.split())
    assert "--channel [voice|sms|sms_fallback]" in help_text


def test_csv_always_has_the_text_columns():
    from scoring.report import ReportRow

    parsed = list(csv.DictReader(io.StringIO(to_csv([ReportRow(group={})], ()))))
    assert list(parsed[0]) == list(CSV_FIGURES)
    assert (parsed[0]["texted"], parsed[0]["undelivered"], parsed[0]["no_reply"]) == ("0", "0", "0")
