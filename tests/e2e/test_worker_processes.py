"""The Procfile's worker, for real: `rq worker --with-scheduler` processes on a real
Redis, on the wall clock, placing calls through the Twilio SDK into phonesim."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from aftercall.wiring import PROCESS_WIRING
from core.models import CallAttempt, RequestState, SurveyRequest
from dialer.calling_hours import CallingWindow, zones_for_number
from dialer.intake import CallEnded, accept_calls
from phonesim import Persona

pytestmark = pytest.mark.e2e

# Valid numbers around the world; at any hour some are inside calling hours.
BASE_NUMBERS = (
    "+18085551234", "+14155551234", "+12125551234", "+442079461234", "+48221234567",
    "+74951234567", "+97142123456", "+862112345678", "+81312123456", "+61291123456",
    "+6493123456",
)  # fmt: skip


def numbers_in_calling_hours(count: int) -> list[str]:
    """`count` numbers whose calling window is open now and for the next 10 minutes."""
    now = datetime.now(UTC)
    window = CallingWindow()
    for base in BASE_NUMBERS:
        zones: list[ZoneInfo] = zones_for_number(base)
        if all(window.allows(now + timedelta(minutes=m), zones) for m in (0, 10)):
            return [base[:-2] + f"{n:02d}" for n in range(count)]
    pytest.skip("no candidate number is inside calling hours right now")


def test_worker_processes_place_each_call_once(campaign, redis_url):
    from core.db import utcnow
    from core.runtime import Runtime

    runtime = Runtime(
        wiring=PROCESS_WIRING,
        settings=campaign.runtime.settings,
        db=campaign.runtime.db,
        catalog=campaign.runtime.catalog,
        now=utcnow,
    )
    phones = numbers_in_calling_hours(6)
    for phone in phones:
        campaign.network.set_persona(phone, Persona.answering(["9", "4"]))
    calls = [
        CallEnded(phone=p, source_call_id=f"rq-{i}", ended_at=utcnow() - timedelta(minutes=10))
        for i, p in enumerate(phones)
    ]
    results = accept_calls(runtime, calls)
    assert all(r.accepted for r in results), results

    settings = runtime.settings
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": redis_url,
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "TWILIO_FROM_NUMBER": settings.twilio_from_number,
        "TWILIO_API_BASE": settings.twilio_api_base,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "CALLS_PER_SECOND": "5",
    }
    # The Procfile's worker class: it builds the Runtime every job of the process uses.
    command = [
        "rq", "worker", "--burst", "--with-scheduler", "--worker-class",
        "aftercall.worker.CallWorker", "--url", redis_url, "calls",
    ]  # fmt: skip
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=60) == 0, worker.stderr.read().decode()[-3000:]

    campaign.network.run_until_idle(timeout=60)
    follow_up = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert follow_up.returncode == 0, follow_up.stderr.decode()[-3000:]

    with runtime.db.session() as session:
        states = session.scalars(select(SurveyRequest.state)).all()
        attempts = session.execute(select(CallAttempt.request_id, CallAttempt.call_sid)).all()
    assert states == [RequestState.COMPLETED] * len(phones)
    assert len(attempts) == len(phones)  # one call per request, however many workers
    assert all(sid for _, sid in attempts)
    assert len(campaign.network.calls) == len(phones)
