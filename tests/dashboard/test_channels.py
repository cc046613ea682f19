"""The dashboard's channels: a channel filter, calls and texts side by side, and the
funnel's text steps (texted, undelivered, no reply) once a text channel has requests in
the range, with none of them on a voice-only page."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta

import pytest

from core.models import Answer, Channel, RequestState, SmsConversation, SurveyRequest
from scoring.report import report
from tests.dashboard.conftest import RANGE, START, _version_id, report_query
from tests.dashboard.dom import Element, parse, table_rows

# (agent, channel, state, the conversation's outcome (None: open), nps, calls placed):
# surveys by text in the seeded fortnight.
TEXTS = [
    ("alice", Channel.SMS, RequestState.COMPLETED, "completed", 9, 0),
    ("alice", Channel.SMS, RequestState.TEXTING, None, None, 0),
    ("bob", Channel.SMS, RequestState.NO_REPLY, "expired", None, 0),
    ("bob", Channel.SMS, RequestState.FAILED, "undelivered", None, 0),
    ("carol", Channel.SMS_FALLBACK, RequestState.COMPLETED, "completed", 3, 2),
    ("carol", Channel.SMS_FALLBACK, RequestState.NO_REPLY, "expired", None, 1),
]
TEXT_STEPS = ("texted", "undelivered", "no_reply")


def add_text_surveys(runtime) -> None:
    """Requests surveyed by text as sms.conversation leaves them: a conversation each,
    closed with its outcome, and the answers given in it (no call attempt)."""
    with runtime.db.session() as session:
        version_id = _version_id(session)
        for index, (agent, channel, state, outcome, nps, calls) in enumerate(TEXTS):
            ended = START + timedelta(days=2, minutes=index)
            request = SurveyRequest(
                phone=f"+1415557{index:04d}", source_call_id=f"text-{index}", agent=agent,
                queue="billing", team="north", language="en", call_ended_at=ended,
                survey_name="post-call", state=state, calls_placed=calls, channel=channel,
            )  # fmt: skip
            session.add(request)
            session.flush()
            conversation = SmsConversation(
                request_id=request.id, phone=request.phone, sender="+15005550006",
                survey_version_id=version_id, language="en", outcome=outcome,
                expires_at=ended + timedelta(days=1),
            )  # fmt: skip
            session.add(conversation)
            session.flush()
            if nps is not None:
                session.add(
                    Answer(request_id=request.id, conversation_id=conversation.id,
                           survey_version_id=version_id, question_key="nps", kind="nps",
                           value=nps, input="text")
                )  # fmt: skip


@pytest.fixture
def with_texts(seeded):
    add_text_surveys(seeded)
    return seeded


def page(client, **params: str) -> Element:
    response = client.get("/dashboard", query_string={**RANGE, **params})
    assert response.status_code == 200, response.text
    return parse(response.text)


def funnel(document: Element) -> dict[str, int]:
    return {
        tr.get("data-key"): int(tr.find("td").get("data-value"))
        for tr in document.by_id("funnel").find_all("tr")
        if tr.get("data-key")
    }


def test_the_channel_filter_offers_every_channel_and_keeps_the_choice(signed_in, with_texts):
    select = page(signed_in, channel="sms").find("select", name="channel")
    assert select is not None
    options = [(o.get("value"), "selected" in o.attrs, o.text) for o in select.find_all("option")]
    assert options == [
        ("", False, "All"),
        ("voice", False, "Voice"),
        ("sms", True, "SMS"),
        ("sms_fallback", False, "SMS fallback"),
    ]
    label = next(e for e in page(signed_in).find_all("label") if e.find("select", name="channel"))
    assert label.text.startswith("Channel")  # the control's accessible name


@pytest.mark.parametrize("channel", ["voice", "sms", "sms_fallback"])
def test_a_channel_filter_gives_that_channels_figures(signed_in, with_texts, channel):
    with with_texts.db.session() as session:
        (expected,) = report(session, report_query(channel=channel))
    document = page(signed_in, channel=channel)
    assert document.by_id("headline-nps").get("data-n") == str(expected.nps_responses)
    steps = funnel(document)
    assert (steps["received"], steps["placed"], steps["reached"]) == (
        expected.received,
        expected.placed,
        expected.reached,
    )
    labels = {"voice": "Voice", "sms": "SMS", "sms_fallback": "SMS fallback"}
    assert [r["channel"] for r in table_rows(document.by_id("channels"))] == [labels[channel]]
    # The text steps only where texts are: a voice filter's funnel has none.
    if channel == "voice":
        assert not set(TEXT_STEPS) & set(steps)
    else:
        assert {k: steps[k] for k in TEXT_STEPS} == {
            "texted": expected.texted,
            "undelivered": expected.undelivered,
            "no_reply": expected.no_reply,
        }
    # Links on the page keep the filter: sorting, paging, the downloads.
    assert f"channel={channel}" in document.by_id("export-agents").get("href")
    assert f"channel={channel}" in document.by_id("export-channels").get("href")


def test_the_funnel_counts_texts_once_a_text_channel_has_requests(signed_in, with_texts):
    steps = funnel(page(signed_in))
    with with_texts.db.session() as session:
        (expected,) = report(session, report_query())
    assert list(steps) == [
        "received", "suppressed", "placed", "texted", "undelivered", "answered", "reached",
        "completed", "partial", "opted_out", "no_reply",
    ]  # fmt: skip
    # Six texted, two expired without a reply, one never delivered. Placed: the 45
    # calls, the four texts (by their text) and the two fallbacks (by their calls).
    assert (steps["texted"], steps["undelivered"], steps["no_reply"]) == (6, 1, 2)
    assert steps["placed"] == expected.placed == 45 + 4 + 2
    assert steps["reached"] == expected.reached


def test_a_voice_only_funnel_is_as_it_was(signed_in, seeded):
    steps = funnel(page(signed_in))
    assert list(steps) == [
        "received", "suppressed", "placed", "answered", "reached", "completed", "partial",
        "opted_out",
    ]  # fmt: skip
    assert [r["channel"] for r in table_rows(page(signed_in).by_id("channels"))] == ["Voice"]


def test_the_channel_table_puts_calls_and_texts_side_by_side(signed_in, with_texts):
    with with_texts.db.session() as session:
        expected = {
            row.group["channel"]: row
            for row in report(session, replace(report_query(), by=("channel",)))
        }
    rows = table_rows(page(signed_in).by_id("channels"))
    assert [r["channel"] for r in rows] == ["Voice", "SMS", "SMS fallback"]
    for row, channel in zip(rows, ("voice", "sms", "sms_fallback"), strict=True):
        figures = expected[channel]
        assert row["nps_n"] == str(figures.nps_responses)
        assert (row["received"], row["placed"], row["reached"], row["completed"]) == (
            str(figures.received),
            str(figures.placed),
            str(figures.reached),
            str(figures.completed),
        )
        assert (row["undelivered"], row["no_reply"]) == (
            str(figures.undelivered),
            str(figures.no_reply),
        )
        rate = figures.response_rate
        assert row["response_rate"] == ("" if rate is None else f"{rate:.1f}")
    assert (rows[1]["placed"], rows[1]["reached"], rows[1]["response_rate"]) == ("4", "1", "100.0")
    download = signed_in.get("/dashboard/export.csv", query_string={**RANGE, "table": "channels"})
    assert download.status_code == 200
    parsed = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["Channel"], r["Placed"], r["Undelivered"], r["No reply"]) for r in parsed] == [
        (r["channel"], r["placed"], r["undelivered"], r["no_reply"]) for r in rows
    ]


def test_the_mode_table_still_adds_every_channel(signed_in, with_texts):
    """The tables by mode and by channel come from one report by both: each still
    equals its own report."""
    with with_texts.db.session() as session:
        (callback,) = report(session, replace(report_query(), by=("mode",)))
    (row,) = table_rows(page(signed_in).by_id("modes"))
    assert (row["mode"], row["received"], row["reached"]) == (
        "Callback",
        str(callback.received),
        str(callback.reached),
    )


def test_an_empty_range_has_an_empty_channel_table(signed_in, runtime):
    assert table_rows(page(signed_in).by_id("channels")) == []


@pytest.mark.parametrize("channel", ["text", "SMS", "in_call"])
def test_an_unknown_channel_says_what_is_wrong(signed_in, with_texts, channel):
    response = signed_in.get("/dashboard", query_string={**RANGE, "channel": channel})
    assert response.status_code == 400
    error = parse(response.text).by_id("filter-error").text
    assert error.startswith("channel:") and "sms_fallback" in error
    assert (
        signed_in.get(
            "/dashboard/export.csv", query_string={**RANGE, "table": "channels", "channel": channel}
        ).status_code
        == 400
    )
