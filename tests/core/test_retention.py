"""Purging personal data keeps every figure and the do-not-call list."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from aftercall.cli import main
from core.models import (
    Answer,
    Channel,
    ContactLeg,
    FollowUp,
    FollowUpChange,
    FollowUpNote,
    OptOut,
    RequestState,
    SmsConversation,
    SmsMessage,
    SurveyRequest,
)
from core.retention import PURGED_PHONE, customer_data, forget_customer, parse_age, purge
from dialer.receivers.contact_records import leg_of
from dialer.receivers.conversations import store_leg
from scoring import follow_ups
from scoring.report import ReportQuery, report
from sms import conversation as sms_conversation
from sms.conversation import Inbound
from tests.conftest import FROM_NUMBER
from tests.dialer.contact_records import contact_record
from tests.scoring.test_report import START, _version_id, add


def seed(runtime):
    with runtime.db.session() as session:
        old = add(session, 1, ended=START - timedelta(days=200), answers=[("nps", "nps", 3)],
                  metadata={"customer_name": "Ada"})  # fmt: skip
        session.add(
            Answer(request_id=old.id, attempt_id=old.attempts[0].id,
                   survey_version_id=_version_id(session), question_key="improve", kind="comment",
                   recording_url="https://example.test/RE1", transcript="call me, Ada")
        )  # fmt: skip
        add(session, 2, ended=START, answers=[("nps", "nps", 10)], metadata={"customer_name": "Bo"})
        session.add(OptOut(phone=old.phone, source="keypad"))


def figures(runtime):
    with runtime.db.session() as session:
        return [row.to_json() for row in report(session, ReportQuery(by=("agent", "month")))]


def test_purge_forgets_people_not_figures(runtime):
    seed(runtime)
    before = figures(runtime)
    with runtime.db.session() as session:
        dry = purge(session, START - timedelta(days=180), dry_run=True)
    assert (dry.requests, dry.comments) == (1, 1)
    with runtime.db.session() as session:
        done = purge(session, START - timedelta(days=180))
    assert (done.requests, done.comments) == (1, 1)
    assert figures(runtime) == before
    with runtime.db.session() as session:
        requests = {r.source_call_id: r for r in session.scalars(select(SurveyRequest))}
        comment = session.scalar(select(Answer).where(Answer.kind == "comment"))
        opt_outs = session.scalars(select(OptOut.phone)).all()
    assert (requests["s-1"].phone, requests["s-1"].extra) == (PURGED_PHONE, {})
    assert requests["s-2"].phone != PURGED_PHONE and requests["s-2"].extra == {
        "customer_name": "Bo"
    }
    assert (comment.transcript, comment.recording_url) == (None, "")
    assert opt_outs == ["+14155550001"]  # an opt-out outlives retention
    with runtime.db.session() as session:
        assert purge(session, START - timedelta(days=180)).requests == 0  # idempotent


@pytest.mark.parametrize(("text", "days"), [("180d", 180), ("26w", 182), (" 7d ", 7)])
def test_ages(text, days):
    assert parse_age(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["", "0d", "180", "6m", "-3d"])
def test_bad_ages(text):
    with pytest.raises(ValueError):
        parse_age(text)


def test_purge_command(runtime, monkeypatch):
    seed(runtime)
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    age = f"{(datetime.now(UTC) - START).days + 30}d"  # only the 200-day-old call
    result = CliRunner().invoke(main, ["purge", "--older-than", age, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would anonymise 1 survey requests and 1 recorded comments" in result.output
    result = CliRunner().invoke(main, ["purge", "--older-than", age])
    assert "anonymised 1 survey requests" in result.output
    bad = CliRunner().invoke(main, ["purge", "--older-than", "soon"])
    assert bad.exit_code == 2


def test_a_customer_can_get_and_erase_their_data(runtime, monkeypatch):
    seed(runtime)
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    runner = CliRunner()
    exported = runner.invoke(main, ["customer", "export", "+1 415 555 0001"])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert data["opted_out"]["how"] == "keypad"
    (request,) = data["survey_requests"]
    assert request["metadata"] == {"customer_name": "Ada"}
    assert {a["question"]: a["transcript"] for a in request["answers"]}["improve"] == "call me, Ada"

    before = figures(runtime)
    dry = runner.invoke(main, ["customer", "forget", "+14155550001", "--dry-run"])
    assert "would anonymise 1 survey requests and 1 recorded comments" in dry.output
    done = runner.invoke(main, ["customer", "forget", "+14155550001"])
    assert "anonymised 1 survey requests" in done.output
    assert figures(runtime) == before
    after = json.loads(runner.invoke(main, ["customer", "export", "+14155550001"]).output)
    assert after["survey_requests"] == []  # nothing left that names them
    assert after["opted_out"] is not None  # but they are still never called
    assert runner.invoke(main, ["customer", "export", "not a phone"]).exit_code == 2


def test_kept_conversation_legs_are_deleted_by_age_and_by_the_customer_s_erasure(runtime):
    """contact_legs holds numbers and agents until a conversation is over: the retention
    purge deletes the old ones, an erasure request the customer's whole conversations."""
    old, recent = START - timedelta(days=400), START
    with runtime.db.session() as session:
        for contact, ended, phone, nxt in (
            ("old-1", old, "+14155550001", None),
            ("keep-1", recent, "+14155550002", None),
            ("mine-1", recent, "+14155550003", "mine-2"),
        ):
            store_leg(
                session, leg_of(contact_record(contact, ended_at=ended, phone=phone, next_=nxt))
            )
        # The transferred leg names no number of its own, but is the same conversation.
        store_leg(session, leg_of(contact_record(
            "mine-2", ended_at=recent, phone=None, initial="mine-1", previous="mine-1",
        )))  # fmt: skip
    with runtime.db.session() as session:
        assert [
            leg["leg"] for leg in customer_data(session, "+14155550003")["conversation_legs"]
        ] == ["mine-1"]
        assert purge(session, START - timedelta(days=30)).legs == 1
        assert forget_customer(session, "+14155550003", dry_run=True).legs == 2
        assert forget_customer(session, "+14155550003").legs == 2
    with runtime.db.session() as session:
        assert session.scalars(select(ContactLeg.leg_id)).all() == ["keep-1"]


# -- texts (the SMS channel) -----------------------------------------------------------

TEXTER, OTHER_TEXTER, STRANGER = "+14155550701", "+14155550702", "+14155550703"


def text_survey(runtime, phone, ended, source):
    """A post-call survey by text, its first question sent (as the dialer's job opens it)."""
    with runtime.db.session() as session:
        request = SurveyRequest(
            phone=phone, source_call_id=source, agent="alice", queue="billing", team="north",
            language="en", call_ended_at=ended, survey_name="post-call",
            state=RequestState.SCHEDULED, channel=Channel.SMS,
        )  # fmt: skip
        session.add(request)
        session.flush()
        request_id = request.id
    assert sms_conversation.open_conversation(runtime, request_id)[1] is not None
    return request_id


def text_in(runtime, phone, *bodies):
    for body in bodies:
        sms_conversation.receive(
            runtime, Inbound(f"SM{uuid.uuid4().hex}", phone, FROM_NUMBER, body)
        )


def sms_rows(runtime):
    """Every text as (conversation's request, phone, body, status), and each
    conversation's phone by its request."""
    with runtime.db.session() as session:
        texts = session.execute(
            select(SmsConversation.request_id, SmsMessage.phone, SmsMessage.body,
                   SmsMessage.status)
            .outerjoin(SmsConversation, SmsConversation.id == SmsMessage.conversation_id)
            .order_by(SmsMessage.id)
        ).all()  # fmt: skip
        conversations = dict(
            session.execute(select(SmsConversation.request_id, SmsConversation.phone)).all()
        )
    return [tuple(t) for t in texts], conversations


def test_a_customer_s_texts_are_listed_and_forgotten(runtime):
    mine = text_survey(runtime, TEXTER, START, "t-1")
    text_in(runtime, TEXTER, "3", "2", "Call me back, Ada")  # completed, with a comment
    text_in(runtime, TEXTER, "Thanks, Ada here")  # after the survey: told it closed
    theirs = text_survey(runtime, OTHER_TEXTER, START, "t-2")
    text_in(runtime, OTHER_TEXTER, "9")

    with runtime.db.session() as session:
        listed = customer_data(session, TEXTER)["texts"]
    assert [(t["direction"], t["meaning"]) for t in listed] == [
        ("outbound", "question"), ("inbound", "answer"), ("outbound", "question"),
        ("inbound", "answer"), ("outbound", "question"), ("inbound", "answer"),
        ("outbound", "thanks"), ("inbound", "expired"), ("outbound", "closed"),
    ]  # fmt: skip
    assert [t["body"] for t in listed if t["direction"] == "inbound"] == [
        "3", "2", "Call me back, Ada", "Thanks, Ada here",
    ]  # fmt: skip
    assert listed[0]["body"].endswith("Reply with a number from 0 to 10.")
    assert {t["status"] for t in listed} == {"pending", "received"}
    assert all(datetime.fromisoformat(t["at"]) for t in listed)

    before, _ = sms_rows(runtime)
    with runtime.db.session() as session:
        forget_customer(session, TEXTER, dry_run=True)
    assert sms_rows(runtime)[0] == before  # a dry run blanks nothing
    with runtime.db.session() as session:
        forget_customer(session, TEXTER)
    after, conversations = sms_rows(runtime)
    theirs_before = [row for row in before if row[1] == OTHER_TEXTER]
    assert len(theirs_before) == 3  # their question, their "9", the next question
    assert [row for row in after if row[1] == OTHER_TEXTER] == theirs_before
    forgotten = [row for row in after if row[1] != OTHER_TEXTER]
    assert len(forgotten) == len(listed)
    assert {(phone, body) for _, phone, body, _ in forgotten} == {(PURGED_PHONE, "")}
    # Statuses stay: delivery figures are no one's personal data.
    assert [row[3] for row in after] == [row[3] for row in before]
    assert conversations == {mine: PURGED_PHONE, theirs: OTHER_TEXTER}
    with runtime.db.session() as session:
        assert customer_data(session, TEXTER)["texts"] == []
        comment = session.scalar(select(Answer).where(Answer.question_key == "improve"))
        assert (comment.request_id, comment.transcript) == (mine, None)
        assert customer_data(session, OTHER_TEXTER)["texts"][1]["body"] == "9"


def test_purge_blanks_old_texts_and_keeps_recent_ones(runtime):
    old = text_survey(runtime, TEXTER, START - timedelta(days=200), "t-old")
    text_in(runtime, TEXTER, "9")
    recent = text_survey(runtime, OTHER_TEXTER, START, "t-recent")
    text_in(runtime, OTHER_TEXTER, "9")
    text_in(runtime, STRANGER, "Who is this? Ada")  # no survey: goes by its own age
    text_in(runtime, STRANGER, "Hello again")
    with runtime.db.session() as session:
        first = session.scalar(
            select(SmsMessage).where(SmsMessage.phone == STRANGER).order_by(SmsMessage.id)
        )
        first.created_at = START - timedelta(days=200)

    with runtime.db.session() as session:
        assert purge(session, START - timedelta(days=180)).requests == 1
    texts, conversations = sms_rows(runtime)
    assert conversations == {old: PURGED_PHONE, recent: OTHER_TEXTER}
    # The old survey's question, its "9" and the next question; the stranger's old text.
    assert [(owner, phone, body) for owner, phone, body, _ in texts] == [
        (old, PURGED_PHONE, ""), (old, PURGED_PHONE, ""), (old, PURGED_PHONE, ""),
        (recent, OTHER_TEXTER, texts[3][2]), (recent, OTHER_TEXTER, "9"),
        (recent, OTHER_TEXTER, texts[5][2]),
        (None, PURGED_PHONE, ""), (None, STRANGER, "Hello again"),
    ]  # fmt: skip
    assert texts[3][2] and texts[5][2]  # the recent survey's questions keep their words
    with runtime.db.session() as session:
        assert purge(session, START - timedelta(days=180)).requests == 0  # idempotent
    assert sms_rows(runtime)[0] == texts


def test_purge_and_erasure_blank_follow_up_notes_and_the_export_lists_them(runtime):
    from_request = _follow_up_request(runtime, "+14155550177")
    with runtime.db.session() as session:
        data = customer_data(session, "+14155550177")
    (listed,) = data["follow_ups"]
    assert listed["notes"][0]["body"] == "Customer says the agent was rude; call back"
    with runtime.db.session() as session:
        forget_customer(session, "+14155550177")
    with runtime.db.session() as session:
        note = session.scalar(select(FollowUpNote))
        assert note.body == ""
        quoted = session.scalar(select(FollowUpChange).where(FollowUpChange.field == "note"))
        assert quoted.new_value == ""
        # The follow-up itself stays: the figures count it.
        assert session.scalar(select(FollowUp.status).where(FollowUp.request_id == from_request))


def _follow_up_request(runtime, phone: str) -> int:
    when = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    with runtime.db.session() as session:
        request = SurveyRequest(
            phone=phone, source_call_id=f"fu-{phone}", call_ended_at=when,
            survey_name="post-call", state=RequestState.COMPLETED,
        )  # fmt: skip
        session.add(request)
        session.flush()
        follow_up = FollowUp(
            request_id=request.id, survey_name="post-call", reason="nps 2 <= 6",
            opened_at=when, due_at=when, changed_at=when, changed_by="system",
        )  # fmt: skip
        session.add(follow_up)
        session.flush()
        follow_ups.add_note(
            session, follow_up, "Customer says the agent was rude; call back",
            author="carol", source="dashboard", at=when,
        )  # fmt: skip
        return request.id
