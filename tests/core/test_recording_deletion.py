"""Purging deletes the comments' audio in the Twilio account (phonesim here), for real.

The recordings live at Twilio, not in our database: anonymising the rows is not enough.
Deletion goes through the twilio SDK, counts what Twilio had already lost as done, and
keeps the RecordingSid of anything Twilio refused, for the next run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from aftercall.cli import main
from core.models import Answer
from core.retention import delete_recordings, purge
from core.runtime import use_worker_runtime
from core.telephony import RedirectingHttpClient
from phonesim import PhoneNetwork, SimClock
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.scoring.test_report import START, _version_id, add

OLD = START - timedelta(days=200)
_numbers = itertools.count(100)


@pytest.fixture
def network() -> Iterator[PhoneNetwork]:
    net = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=SimClock(START), seed=3)
    net.start()
    yield net
    net.stop()


def twilio(network: PhoneNetwork, token: str = AUTH_TOKEN) -> Client:
    return Client(ACCOUNT_SID, token, http_client=RedirectingHttpClient(network.api_base))


def recording_at_twilio(network: PhoneNetwork) -> str:
    call = twilio(network).calls.create(
        to="+14155550123", from_="+14155550100", url="http://127.0.0.1:9/unused"
    )
    sid, _url = network.add_recording(network.call(call.sid), 12.0, "the hold music")
    return sid


def seed_comments(runtime, sids: list[str], ended: datetime = OLD) -> list[str]:
    """A detractor with a recorded comment per RecordingSid; returns their phones."""
    phones = []
    with runtime.db.session() as session:
        for sid in sids:
            request = add(session, next(_numbers), ended=ended, answers=[("nps", "nps", 2)])
            phones.append(request.phone)
            session.add(
                Answer(request_id=request.id, attempt_id=request.attempts[0].id,
                       survey_version_id=_version_id(session), question_key="improve",
                       kind="comment", recording_url=f"https://api.twilio.test/{sid}",
                       recording_sid=sid, transcript="too long on hold")
            )  # fmt: skip
    return phones


def pending_sids(runtime) -> list[str]:
    with runtime.db.session() as session:
        return session.scalars(
            select(Answer.recording_sid).where(Answer.recording_sid.is_not(None))
        ).all()


def test_purge_deletes_the_recordings_at_twilio(runtime, network, monkeypatch):
    kept, deleted_by_hand = recording_at_twilio(network), "RE" + "0" * 32
    seed_comments(runtime, [kept, deleted_by_hand])
    recent = recording_at_twilio(network)
    seed_comments(runtime, [recent], ended=datetime.now(UTC))  # not old enough to purge
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_API_BASE", network.api_base)

    result = CliRunner().invoke(main, ["purge", "--older-than", "180d"])

    assert result.exit_code == 0, result.output
    assert "recordings at Twilio: 1 deleted, 1 already gone, 0 failed" in result.output
    assert network.recording(kept) is None and network.recording(recent) is not None
    media = f"{network.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{kept}.wav"
    assert requests.get(media, timeout=5).status_code == 404
    assert pending_sids(runtime) == [recent]


def test_a_refused_deletion_is_kept_for_the_next_run(runtime, network):
    sid = recording_at_twilio(network)
    seed_comments(runtime, [sid])
    with runtime.db.session() as session:
        purge(session, START - timedelta(days=180))
        refused = delete_recordings(session, twilio(network, token="wrong-token"))
    assert (refused.deleted, refused.already_gone, refused.failed) == (0, 0, 1)
    assert pending_sids(runtime) == [sid] and network.recording(sid) is not None
    with runtime.db.session() as session:
        retried = delete_recordings(session, twilio(network))
    assert (retried.deleted, retried.failed) == (1, 0)
    assert pending_sids(runtime) == [] and network.recording(sid) is None


def test_customer_forget_deletes_their_recordings(runtime, network, monkeypatch):
    sid = recording_at_twilio(network)
    (phone,) = seed_comments(runtime, [sid], ended=datetime.now(UTC))
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_API_BASE", network.api_base)
    result = CliRunner().invoke(main, ["customer", "forget", phone])
    assert result.exit_code == 0, result.output
    assert "1 deleted" in result.output
    assert network.recording(sid) is None


def test_without_twilio_credentials_the_command_says_so(runtime, monkeypatch):
    seed_comments(runtime, ["RE" + "1" * 32])
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["purge", "--older-than", "180d"])
    assert result.exit_code == 0, result.output
    assert "recordings at Twilio not deleted: TWILIO_ACCOUNT_SID/AUTH_TOKEN not set" in (
        result.output
    )
    assert len(pending_sids(runtime)) == 1  # left for a run that can reach Twilio


def test_the_daily_job_purges_after_retention_days(runtime, network):
    from aftercall.jobs import purge_old_data

    sid = recording_at_twilio(network)
    seed_comments(runtime, [sid])
    settings = replace(runtime.settings, twilio_api_base=network.api_base)
    use_worker_runtime(replace(runtime, settings=replace(settings, retention_days=None)))
    try:
        assert purge_old_data() == "RETENTION_DAYS is not set: nothing purged"
        use_worker_runtime(replace(runtime, settings=replace(settings, retention_days=180)))
        note = purge_old_data()
    finally:
        use_worker_runtime(None)
    assert note.startswith("anonymised 1 survey requests, 1 comments")
    assert "1 deleted" in note and network.recording(sid) is None


def test_phonesim_deletes_recordings_only_for_the_account(network):
    sid = recording_at_twilio(network)
    with pytest.raises(TwilioRestException) as refused:
        twilio(network, token="wrong-token").recordings(sid).delete()
    assert refused.value.status == 401
    assert twilio(network).recordings(sid).delete() is True
    with pytest.raises(TwilioRestException) as again:
        twilio(network).recordings(sid).delete()
    assert again.value.status == 404
