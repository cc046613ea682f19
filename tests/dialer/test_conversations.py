"""One survey per Connect conversation, after its last leg, rating the last agent:
dialer.receivers.contact_records (a record -> a leg) and conversations (the rule).

The transfer, consult and external-transfer cases follow AWS's "Identify conferences and
transfers by using Amazon Connect contact records" (ACW order, TransferCompletedTimestamp,
the DisconnectTimestamp of a handed-on leg) in records written for these tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.receivers.contact_records import conversation_call, leg_of, records_in
from dialer.receivers.conversations import ConversationOngoing
from dialer.receivers.mapping import EventIgnored, IgnoreReason, InvalidEvent
from tests.dialer.contact_records import contact_record

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
FIRST, SECOND = "11111111-aaaa-4aaa-8aaa-000000000001", "22222222-bbbb-4bbb-8bbb-000000000002"


def legs(*records):
    return [leg_of(record) for record in records]


def test_a_plain_call_is_one_leg_and_rates_its_agent():
    record = contact_record(FIRST, ended_at=T0, agent="alice.ng", queue="Billing", team="North")
    call = conversation_call(FIRST, legs(record))
    assert (call.source_call_id, call.phone, call.ended_at) == (FIRST, "+14155550123", T0)
    assert (call.agent, call.queue, call.team) == ("alice.ng", "Billing", "North")
    assert call.metadata["legs"] == 1


def cold_transfer():
    """Alice hands the customer to Bob and leaves: her leg ends at the transfer, her
    after-contact work begins before Bob's, and her record carries
    TransferCompletedTimestamp; Bob's leg names hers as initial and previous."""
    handed_on = T0 - timedelta(minutes=6)
    alice = contact_record(
        FIRST, ended_at=handed_on, agent="alice.ng", next_=SECOND,
        acw_at=handed_on, transfer_completed_at=handed_on,
    )  # fmt: skip
    bob = contact_record(
        SECOND, ended_at=T0, agent="bob.ortiz", queue="Retention", team="South",
        initial=FIRST, previous=FIRST, method="TRANSFER",
    )  # fmt: skip
    return alice, bob


def test_a_transferred_call_rates_the_last_agent_at_the_end_of_the_last_leg():
    alice, bob = cold_transfer()
    call = conversation_call(FIRST, legs(alice, bob))
    assert (call.agent, call.queue, call.team) == ("bob.ortiz", "Retention", "South")
    assert call.ended_at == T0
    assert call.phone == "+14155550123"
    assert call.metadata == {"contact_id": SECOND, "legs": 2, "initiation_method": "INBOUND"}


@pytest.mark.parametrize("arrived", ["first leg only", "last leg only"])
def test_a_conversation_with_a_leg_still_to_come_waits(arrived):
    alice, bob = cold_transfer()
    present = [alice] if arrived == "first leg only" else [bob]
    with pytest.raises(ConversationOngoing):
        conversation_call(FIRST, legs(*present))


def test_the_legs_order_of_arrival_changes_nothing():
    alice, bob = cold_transfer()
    assert conversation_call(FIRST, legs(alice, bob)) == conversation_call(FIRST, legs(bob, alice))


def test_a_warm_transfer_without_transfer_completed_still_rates_the_agent_who_stayed():
    # AWS: a warm transfer leaves no TransferCompletedTimestamp; ACW order tells.
    alice, bob = cold_transfer()
    alice["TransferCompletedTimestamp"] = None
    assert conversation_call(FIRST, legs(alice, bob)).agent == "bob.ortiz"


def test_a_consult_rates_the_agent_who_kept_the_customer():
    # Alice consults Bob, who leaves first (his after-contact work starts first); the
    # customer stays with Alice to the end. Bob's record is written first.
    consult_ends = T0 - timedelta(minutes=3)
    alice = contact_record(FIRST, ended_at=T0, agent="alice.ng", next_=SECOND)
    bob = contact_record(
        SECOND, ended_at=consult_ends, agent="bob.ortiz", initial=FIRST, previous=FIRST,
        method="TRANSFER", talked=timedelta(minutes=1), phone=None,
    )  # fmt: skip
    call = conversation_call(FIRST, legs(bob, alice))
    assert (call.agent, call.ended_at) == ("alice.ng", T0)


def test_an_external_transfer_calls_the_customer_and_rates_the_agent_who_handed_on():
    handed_on = T0 - timedelta(minutes=5)
    alice = contact_record(
        FIRST, ended_at=handed_on, agent="alice.ng", next_=SECOND,
        transfer_completed_at=handed_on,
    )  # fmt: skip
    external = contact_record(
        SECOND, ended_at=T0, agent="alice.ng", initial=FIRST, previous=FIRST,
        method="EXTERNAL_OUTBOUND", phone="+18005550199",
    )  # fmt: skip
    call = conversation_call(FIRST, legs(alice, external))
    assert (call.phone, call.agent, call.ended_at) == ("+14155550123", "alice.ng", T0)


def test_a_call_no_agent_took_is_ignored_as_abandoned():
    record = contact_record(FIRST, ended_at=T0, agent=None)  # abandoned in the queue
    with pytest.raises(EventIgnored) as ignored:
        conversation_call(FIRST, legs(record))
    assert ignored.value.reason is IgnoreReason.NO_AGENT


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Channel": "CHAT"}, IgnoreReason.NOT_VOICE),
        ({"Channel": "TASK"}, IgnoreReason.NOT_VOICE),
        ({"InitiationMethod": "MONITOR"}, IgnoreReason.INITIATION_SKIPPED),
    ],
)
def test_contacts_that_are_no_leg_of_a_voice_conversation_are_ignored(change, reason):
    with pytest.raises(EventIgnored) as ignored:
        leg_of(contact_record(FIRST, ended_at=T0) | change)
    assert ignored.value.reason is reason


@pytest.mark.parametrize(
    "record",
    [[], "a string", {"Channel": "VOICE"}, {"ContactId": 42, "Channel": "VOICE"}],
)
def test_what_is_not_a_contact_record_is_invalid(record):
    with pytest.raises(InvalidEvent):
        leg_of(record)


def test_keys_in_another_case_and_an_epoch_placeholder_are_read_as_aws_writes_them():
    record = contact_record(FIRST, ended_at=T0)
    record["agent"] = record.pop("Agent")
    record["agent"]["AfterContactWorkStartTimestamp"] = "1970-01-01T00:00:00Z"
    leg = leg_of(record)
    assert leg.agent == "alice.ng" and leg.after_contact_work_at is None


@pytest.mark.parametrize(
    ("data", "count"),
    [
        (b'{"ContactId":"a"}', 1),
        (b'{"ContactId":"a"}\n', 1),
        (b'{"ContactId":"a"}\n{"ContactId":"b"}\n', 2),
    ],
)
def test_a_firehose_record_holds_one_or_more_json_records_with_or_without_newline(data, count):
    assert len(records_in(data)) == count


@pytest.mark.parametrize("data", [b"", b"\n", b"not json", b'{"ContactId":', b"\xff\xfe"])
def test_a_firehose_record_that_is_no_json_is_invalid(data):
    with pytest.raises(InvalidEvent):
        records_in(data)
