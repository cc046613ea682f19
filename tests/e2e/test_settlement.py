"""Reconciliation settles what never reached aftercall: a lost final status callback
(asked of Twilio's Calls API through the SDK, into phonesim), a job that failed or
died with its worker, a create request Twilio never answered. Simulated clock, real
Redis, an in-process rq worker, as in test_dialer.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from aftercall.wiring import PROCESS_WIRING
from core.db import Database
from core.models import CallAttempt, RequestState, SurveyRequest
from core.runtime import Runtime, use_worker_runtime
from core.telephony import rest_client
from dialer import dispatch, scheduling
from dialer.placement import PlacementFailure, classify
from dialer.settlement import FINAL_STATUS_OVERDUE, settle_overdue_attempts
from phonesim import Persona
from tests.e2e.test_dialer import NO_FOLLOW_UP_GRACE, Dialer

pytestmark = pytest.mark.e2e


def _overdue(dialer: Dialer) -> None:
    """Let enough time pass that any call placed so far is over."""
    dialer.network.clock.set(dialer.now() + FINAL_STATUS_OVERDUE + timedelta(minutes=1))


def _reconcile(dialer: Dialer) -> None:
    scheduling.reconcile(dialer.runtime)
    dialer.work()


def test_a_lost_final_callback_is_settled_from_twilio_and_retried_up_to_the_limit(dialer):
    phone = "+14155550401"
    dialer.network.set_persona(phone, Persona.busy())
    dialer.network.lose_final_callbacks(numbers=[phone])
    result = dialer.intake(phone)
    dialer.work()
    request = dialer.campaign.request(result.request_id)
    assert request.state is RequestState.CALLING
    assert scheduling.reconcile(dialer.runtime) == 0  # not overdue yet: nothing asked
    assert not [r for r in dialer.network.journal.rest if r.method == "GET"]

    for _ in range(6):
        _overdue(dialer)
        _reconcile(dialer)
        if scheduling.next_scheduled_time(dialer.queue) is not None:
            dialer.run_to_completion()
    attempts = dialer.attempts(result.request_id)
    # Each attempt settled as the callback would have: busy, retried, up to the limit.
    assert [a.status for a in attempts] == ["busy", "busy", "busy"]
    request = dialer.campaign.request(result.request_id)
    assert all(a.events[-1].params["CallbackSource"] == "calls-api" for a in request.attempts)
    assert request.state is RequestState.BUSY
    assert len(dialer.network.calls_to(phone)) == 3


@pytest.mark.parametrize(
    ("persona", "state"),
    [
        (Persona.answering(["9", "5"]), RequestState.COMPLETED),
        (Persona.hangs_up_after(1, ["6"]), RequestState.PARTIAL),
        (Persona.silent(), RequestState.ABANDONED),
    ],
)
def test_a_survey_call_whose_final_callback_was_lost_ends_as_if_it_had_come(dialer, persona, state):
    phone = "+14155550402"
    dialer.network.set_persona(phone, persona)
    dialer.network.lose_final_callbacks(numbers=[phone])
    result = dialer.intake(phone)
    dialer.work()
    (attempt,) = dialer.attempts(result.request_id)
    assert attempt.status == "in-progress"  # still holding a line
    _overdue(dialer)
    _reconcile(dialer)
    (attempt,) = dialer.attempts(result.request_id)
    call = dialer.network.calls_to(phone)[0]
    assert (attempt.status, attempt.duration_seconds) == ("completed", call.duration)
    assert attempt.ended_at == call.end_time.replace(microsecond=0)  # RFC 2822: seconds
    assert dialer.campaign.request(result.request_id).state is state
    assert len(dialer.network.calls) == 1


def test_a_call_still_live_is_left_alone(dialer):
    phone = "+14155550403"
    result = dialer.intake(phone)
    scheduling.release_due_jobs(dialer.queue, dialer.now())
    dialer.worker.work(burst=True)  # placed; the network has not run it yet
    _overdue(dialer)
    (verdict,) = settle_overdue_attempts(dialer.runtime)
    assert verdict.outcome == "live"
    (attempt,) = dialer.attempts(result.request_id)
    assert attempt.status == "queued" and attempt.call_sid
    assert dialer.campaign.request(result.request_id).state is RequestState.CALLING


def test_a_call_twilio_does_not_know_is_lost_and_retried(dialer):
    phone = "+14155550404"
    dialer.network.set_persona(phone, Persona.answering(["9", "5"]))
    result = dialer.intake(phone)
    # The attempt carries a CallSid Twilio has no record of (20404 when fetched).
    with dialer.runtime.db.session() as session:
        request = session.get(SurveyRequest, result.request_id)
        request.state, request.calls_placed = RequestState.CALLING, 1
        session.add(CallAttempt(request_id=request.id, number=1, status="ringing",
                                call_sid="CA" + "f" * 32, created_at=dialer.now()))  # fmt: skip
    dialer.runtime.redis.flushdb()
    _overdue(dialer)
    _reconcile(dialer)
    dialer.run_to_completion()
    attempts = dialer.attempts(result.request_id)
    assert [a.status for a in attempts] == ["lost", "completed"]
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED


def test_twilio_api_errors_leave_the_attempt_for_the_next_run(dialer):
    phone = "+14155550405"
    dialer.network.set_persona(phone, Persona.no_answer())
    dialer.network.lose_final_callbacks(numbers=[phone])
    result = dialer.intake(phone)
    dialer.work()
    _overdue(dialer)
    dialer.network.inject_fault(status=500, times=1, path_contains="/Calls/")
    assert scheduling.reconcile(dialer.runtime) == 0
    (attempt,) = dialer.attempts(result.request_id)
    assert attempt.status == "ringing"
    dialer.network.inject_fault(status=429, times=1, path_contains="/Calls/")
    assert scheduling.reconcile(dialer.runtime) == 0
    assert scheduling.reconcile(dialer.runtime) == 1  # the follow-up
    (attempt,) = dialer.attempts(result.request_id)
    assert attempt.status == "no-answer"


def test_a_call_job_that_failed_is_queued_again(dialer):
    phone = "+14155550406"
    dialer.network.set_persona(phone, Persona.answering(["9", "5"]))
    result = dialer.intake(phone)
    unreachable = "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none"
    broken = Runtime(
        wiring=PROCESS_WIRING,
        settings=dialer.runtime.settings.with_overrides(database_url=unreachable),
        db=Database(unreachable),
        catalog=dialer.runtime.catalog,
        now=dialer.runtime.now,
    )
    use_worker_runtime(broken)  # the database is down while the job runs
    scheduling.release_due_jobs(dialer.queue, dialer.now())
    dialer.worker.work(burst=True)
    use_worker_runtime(dialer.runtime)
    job_id = scheduling.call_job_id(result.request_id, 1, result.due_at)
    assert Job.fetch(job_id, connection=dialer.runtime.redis).get_status() == JobStatus.FAILED
    assert dialer.network.calls == []
    assert scheduling.reconcile(dialer.runtime) == 1
    assert scheduling.reconcile(dialer.runtime) == 0
    dialer.run_to_completion()
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED


def test_a_job_that_died_with_its_worker_is_queued_again(dialer):
    phone = "+14155550407"
    dialer.network.set_persona(phone, Persona.answering(["9", "5"]))
    result = dialer.intake(phone)
    job_id = scheduling.call_job_id(result.request_id, 1, result.due_at)
    job = Job.fetch(job_id, connection=dialer.runtime.redis)
    # SIGKILLed while running it: marked started, never heard of again.
    job.set_status(JobStatus.STARTED)
    job.started_at = datetime.now(UTC) - timedelta(seconds=30)
    job.save()
    assert scheduling.reconcile(dialer.runtime) == 0  # it may still be running
    job.started_at = datetime.now(UTC) - scheduling.STALLED_JOB - timedelta(seconds=1)
    job.save()
    assert scheduling.reconcile(dialer.runtime) == 1
    dialer.run_to_completion()
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED
    assert len(dialer.network.calls) == 1


def test_a_follow_up_that_failed_is_run_again(dialer):
    phone = "+14155550408"
    dialer.network.set_persona(phone, Persona.busy())
    result = dialer.intake(phone)
    scheduling.release_due_jobs(dialer.queue, dialer.now())
    dialer.worker.work(burst=True)
    dialer.network.run_until_idle()
    dialer.runtime.redis.flushdb()  # the webhook's follow-up is gone
    dialer.network.clock.set(dialer.now() + timedelta(minutes=3))
    # The follow-up's grace is wall-clock time (it waits for a real rq job): none here.
    assert scheduling.reconcile(dialer.runtime, NO_FOLLOW_UP_GRACE) == 1
    job = Job.fetch(f"follow-up-{result.request_id}", connection=dialer.runtime.redis)
    job.set_status(JobStatus.FAILED)  # the database was down when it ran
    assert scheduling.reconcile(dialer.runtime, NO_FOLLOW_UP_GRACE) == 1
    dialer.worker.work(burst=True)
    assert dialer.campaign.request(result.request_id).state is RequestState.SCHEDULED


def test_a_create_twilio_never_answers_keeps_the_claim_and_calls_once(dialer):
    phone = "+14155550409"
    dialer.network.set_persona(phone, Persona.answering(["9", "5"]))
    dialer.runtime.__dict__["twilio"] = rest_client(dialer.runtime.settings, timeout=0.3)
    dialer.network.slow_down_creates(seconds=1.0)
    result = dialer.intake(phone)
    outcome = dispatch.dial(dialer.runtime, result.request_id, 1)
    assert outcome.startswith("uncertain")
    assert dialer.campaign.request(result.request_id).state is RequestState.CALLING
    # The call was placed after all: its webhooks name the attempt and store its CallSid.
    dialer.network.run_until_idle()
    dialer.run_to_completion()
    (attempt,) = dialer.attempts(result.request_id)
    assert attempt.call_sid == dialer.network.calls[0].sid
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED
    assert len(dialer.network.calls) == 1


def test_a_create_twilio_never_answers_and_never_placed_is_lost_then_retried(dialer):
    phone = "+14155550410"
    dialer.network.set_persona(phone, Persona.answering(["9", "5"]))
    dialer.runtime.__dict__["twilio"] = rest_client(dialer.runtime.settings, timeout=0.3)
    result = dialer.intake(phone)
    original = dialer.runtime.twilio.calls.create

    def times_out(**params):
        raise requests.exceptions.ReadTimeout("read timed out")

    dialer.runtime.twilio.calls.create = times_out
    assert dispatch.dial(dialer.runtime, result.request_id, 1).startswith("uncertain")
    dialer.runtime.twilio.calls.create = original
    _overdue(dialer)
    _reconcile(dialer)
    dialer.run_to_completion()
    attempts = dialer.attempts(result.request_id)
    assert [a.status for a in attempts] == ["lost", "completed"]
    assert len(dialer.network.calls) == 1


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (requests.exceptions.ReadTimeout(), PlacementFailure.UNCERTAIN),
        (requests.exceptions.ConnectTimeout(), PlacementFailure.TRANSIENT),
        (requests.exceptions.ConnectionError("refused"), PlacementFailure.TRANSIENT),
    ],
)
def test_only_requests_that_may_have_reached_twilio_are_uncertain(exc, failure):
    assert classify(exc)[0] is failure


def test_call_jobs_left_waiting_by_a_dead_scheduler_are_queued(dialer):
    phone = "+14155550411"
    dialer.network.set_persona(phone, Persona.answering(["9", "5"]))
    result = dialer.intake(phone)
    # The worker holding rq's scheduler lock was killed: nobody moves the due job.
    dialer.network.clock.set(result.due_at + timedelta(seconds=30))
    assert scheduling.reconcile(dialer.runtime) == 0  # a scheduler may just be slow
    dialer.network.clock.set(result.due_at + scheduling.SCHEDULER_STALLED)
    assert scheduling.reconcile(dialer.runtime) == 1
    dialer.worker.work(burst=True)
    dialer.network.run_until_idle()
    dialer.worker.work(burst=True)
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED
    assert len(dialer.network.calls) == 1


@pytest.mark.parametrize("where", ["queue", "scheduled"])
def test_a_job_marked_waiting_but_on_no_queue_is_queued_again(dialer, where):
    phone = "+14155550412"
    dialer.network.set_persona(phone, Persona.answering(["9", "5"]))
    result = dialer.intake(phone)
    job_id = scheduling.call_job_id(result.request_id, 1, result.due_at)
    redis = dialer.runtime.redis
    # A worker took the job off the queue and Redis crashed before it was marked
    # started (or lost that second of writes): the job says queued, no queue has it.
    if where == "queue":
        scheduling.release_due_jobs(dialer.queue, dialer.now())
        assert redis.lrem(dialer.queue.key, 0, job_id) == 1
    else:
        assert redis.zrem(ScheduledJobRegistry(queue=dialer.queue).key, job_id) == 1
    assert scheduling.reconcile(dialer.runtime) == 1
    assert scheduling.reconcile(dialer.runtime) == 0
    dialer.run_to_completion()
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED
