"""The dialer end to end: intake -> rq jobs on a real Redis -> an rq worker -> the Twilio
SDK -> phonesim -> webhooks -> retries. Time is the simulated clock shared by the
dialer and the phone network; `advance()` releases due jobs as rq's scheduler would."""

from __future__ import annotations

import bisect
import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import select
from twilio.rest import Client

from core.models import CallAttempt, OptOut, RequestState, SurveyRequest
from core.pacing import acquire_call_slot, window_and_limit
from core.telephony import RedirectingHttpClient
from dialer import dispatch, scheduling
from dialer.intake import CallEnded, accept_calls
from dialer.scheduling import CALL_QUEUE
from dialer.settlement import FINAL_STATUS_OVERDUE
from phonesim import Persona

pytestmark = pytest.mark.e2e

# Reconciliation without the grace it gives a status webhook's own follow-up job: that
# grace is wall-clock time, which the simulated clock does not move.
NO_FOLLOW_UP_GRACE = scheduling.Patience(follow_up=timedelta(0))


class Dialer:
    def __init__(self, campaign) -> None:
        self.campaign = campaign
        self.runtime = campaign.runtime
        self.network = campaign.network
        self.queue = self.runtime.queue(CALL_QUEUE)
        self.worker = SimpleWorker([self.queue], connection=self.runtime.redis)
        self.counter = 0

    def now(self) -> datetime:
        return self.network.clock.now()

    def intake(self, phone: str, ended_minutes_ago: int = 10, **fields):
        self.counter += 1
        call = CallEnded(
            phone=phone,
            source_call_id=fields.pop("source_call_id", f"crm-{self.counter}"),
            ended_at=self.now() - timedelta(minutes=ended_minutes_ago),
            agent="alice",
            **fields,
        )
        (result,) = accept_calls(self.runtime, [call])
        return result

    def work(self) -> None:
        """Release due jobs, run them, let the calls play out, run the follow-ups."""
        scheduling.release_due_jobs(self.queue, self.now())
        self.worker.work(burst=True)
        self.network.run_until_idle(timeout=30)
        self.worker.work(burst=True)

    def advance_to(self, when: datetime) -> None:
        self.network.clock.set(when)
        self.work()

    def run_to_completion(self, limit: int = 20) -> None:
        self.work()
        for _ in range(limit):
            due = scheduling.next_scheduled_time(self.queue)
            if due is None:
                return
            self.advance_to(max(due, self.now()))
        raise AssertionError("campaign did not finish")

    def attempts(self, request_id: int) -> list[CallAttempt]:
        with self.runtime.db.session() as session:
            return list(
                session.scalars(
                    select(CallAttempt)
                    .where(CallAttempt.request_id == request_id)
                    .order_by(CallAttempt.number)
                )
            )


def test_a_call_is_placed_at_its_due_time_and_not_before(dialer):
    dialer.network.set_persona("+14155550301", Persona.answering(["9", "5"]))
    result = dialer.intake("+14155550301", ended_minutes_ago=1)
    assert result.accepted
    assert result.due_at == dialer.now() + timedelta(minutes=4)  # 5 minutes after the call
    dialer.work()
    assert dialer.network.calls == []
    dialer.advance_to(result.due_at)
    (call,) = dialer.network.calls
    assert call.to == "+14155550301"
    request = dialer.campaign.request(result.request_id)
    assert request.state is RequestState.COMPLETED
    assert {a.question_key: a.value for a in request.answers} == {"nps": 9, "csat": 5}


def test_busy_is_retried_with_backoff_up_to_the_attempt_limit(dialer):
    dialer.network.set_persona("+14155550302", Persona.busy())
    result = dialer.intake("+14155550302")
    dialer.run_to_completion()
    attempts = dialer.attempts(result.request_id)
    assert [a.status for a in attempts] == ["busy", "busy", "busy"]
    gaps = [b.created_at - a.created_at for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= timedelta(minutes=30)
    assert gaps[1] >= timedelta(minutes=120)
    assert dialer.campaign.request(result.request_id).state is RequestState.BUSY
    assert len(dialer.network.calls_to("+14155550302")) == 3


def test_no_answer_then_answered_completes_on_the_second_attempt(dialer):
    phone = "+14155550303"
    dialer.network.set_persona(phone, Persona.no_answer())
    result = dialer.intake(phone)
    dialer.work()
    assert dialer.campaign.request(result.request_id).state is RequestState.SCHEDULED
    dialer.network.set_persona(phone, Persona.answering(["10", "5"]))
    dialer.run_to_completion()
    assert [a.status for a in dialer.attempts(result.request_id)] == ["no-answer", "completed"]
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED


@pytest.mark.parametrize(
    ("persona", "state"),
    [
        (Persona.machine(), RequestState.VOICEMAIL),
        (Persona.opts_out(at_question=1), RequestState.OPTED_OUT),
    ],
)
def test_voicemail_and_opt_out_are_never_called_again(dialer, persona, state):
    dialer.network.set_persona("+14155550304", persona)
    result = dialer.intake("+14155550304")
    dialer.run_to_completion()
    assert len(dialer.attempts(result.request_id)) == 1
    assert dialer.campaign.request(result.request_id).state is state


def test_an_opt_out_arriving_while_queued_cancels_the_call(dialer):
    result = dialer.intake("+14155550305")
    with dialer.runtime.db.session() as session:
        session.add(OptOut(phone="+14155550305", source="api"))
    dialer.run_to_completion()
    assert dialer.network.calls == []
    request = dialer.campaign.request(result.request_id)
    assert (request.state, request.suppression_reason) == (RequestState.SUPPRESSED, "opted_out")


def test_outside_calling_hours_the_call_waits_for_the_morning(dialer):
    # 18:05 UTC is 03:05 in Tokyo: the call is due at 09:00 Tokyo, 00:00 UTC.
    phone = "+81312345678"
    dialer.network.set_persona(phone, Persona.answering(["8", "4"]))
    result = dialer.intake(phone, language="en")
    assert result.due_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    dialer.work()
    assert dialer.network.calls == []
    dialer.run_to_completion()
    (attempt,) = dialer.attempts(result.request_id)
    assert attempt.created_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


def test_a_job_delivered_twice_calls_once(dialer):
    result = dialer.intake("+14155550306")
    due = result.due_at
    # rq is at-least-once: the same work arrives under two job ids.
    scheduling.enqueue_call(dialer.runtime, result.request_id, 1, due)
    scheduling.enqueue_call(dialer.runtime, result.request_id, 1, due + timedelta(seconds=1))
    dialer.advance_to(due + timedelta(seconds=1))
    assert len(dialer.attempts(result.request_id)) == 1
    assert len(dialer.network.calls) == 1


def test_concurrent_workers_never_dial_the_same_request_twice(dialer):
    result = dialer.intake("+14155550307")
    barrier = threading.Barrier(4)
    outcomes = []

    def race() -> None:
        barrier.wait()
        outcomes.append(dispatch.dial(dialer.runtime, result.request_id, 1))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(o.startswith("placed") for o in outcomes) == 1, outcomes
    assert len(dialer.attempts(result.request_id)) == 1


def test_twilio_rate_limit_reschedules_without_losing_the_request(dialer):
    dialer.network.set_persona("+14155550308", Persona.answering(["7", "3"]))
    dialer.network.inject_fault(status=429, times=1, path_contains="Calls.json")
    result = dialer.intake("+14155550308")
    dialer.work()
    (refused,) = dialer.attempts(result.request_id)
    assert (refused.status, refused.error_code) == ("rejected", "20429")
    request = dialer.campaign.request(result.request_id)
    assert request.state is RequestState.SCHEDULED
    assert request.due_at == dialer.now() + timedelta(seconds=30)
    dialer.run_to_completion()
    attempts = dialer.attempts(result.request_id)
    assert [a.status for a in attempts] == ["rejected", "completed"]
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED


def test_twilio_server_errors_back_off_and_count_no_attempt(dialer):
    dialer.network.set_persona("+14155550309", Persona.busy())
    dialer.network.inject_fault(status=500, times=2, path_contains="Calls.json")
    result = dialer.intake("+14155550309")
    dialer.run_to_completion()
    statuses = [a.status for a in dialer.attempts(result.request_id)]
    # Two refusals, then the three real attempts the survey allows.
    assert statuses == ["rejected", "rejected", "busy", "busy", "busy"]


def test_rejected_credentials_pause_the_dialer_loudly(dialer, caplog):
    runtime = dialer.runtime
    runtime.__dict__["twilio"] = Client(
        runtime.settings.twilio_account_sid,
        "not-the-token",
        http_client=RedirectingHttpClient(dialer.network.api_base),
    )
    result = dialer.intake("+14155550310")
    dialer.work()
    assert "credentials" in (dispatch.paused_reason(runtime) or "")
    assert any(r.levelname == "CRITICAL" for r in caplog.records)
    request = dialer.campaign.request(result.request_id)
    assert request.state is RequestState.SCHEDULED  # kept, not failed
    # While paused, due jobs are held back rather than dialed.
    del runtime.__dict__["twilio"]
    dialer.advance_to(request.due_at)
    assert dialer.network.calls == []
    dispatch.resume(runtime)
    dialer.network.set_persona("+14155550310", Persona.answering(["9", "4"]))
    dialer.run_to_completion()
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED


def test_reconcile_rebuilds_jobs_redis_lost(dialer):
    dialer.network.set_persona("+14155550311", Persona.answering(["9", "4"]))
    result = dialer.intake("+14155550311")
    dialer.runtime.redis.flushdb()  # Redis restarted without persistence
    assert scheduling.next_scheduled_time(dialer.queue) is None
    assert scheduling.reconcile(dialer.runtime) == 1
    assert scheduling.reconcile(dialer.runtime) == 0  # idempotent
    dialer.run_to_completion()
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED


def test_the_thirty_day_cap_holds_across_surveys(dialer):
    phone = "+14155550312"
    dialer.network.set_persona(phone, Persona.busy())
    first = dialer.intake(phone)
    dialer.run_to_completion()
    assert len(dialer.attempts(first.request_id)) == 3
    # A later support call for the same customer: fatigue suppresses it anyway, and
    # with fatigue configured off the hard cap of 3 calls in 30 days still would.
    second = dialer.intake(phone, ended_minutes_ago=5)
    assert second.reason == "surveyed_recently"


def test_pacing_never_admits_more_than_the_cps_in_any_second(dialer):
    cps = 20.0
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            admission = acquire_call_slot(dialer.runtime.redis, cps, max_wait=10)
            assert admission.granted
            with lock:
                starts.append(admission.started_at)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts.sort()
    assert len(starts) == 60
    most = max(bisect.bisect_left(starts, t + 1.0) - i for i, t in enumerate(starts))
    assert most <= cps
    # ...and it is not slower than it must be: 60 calls at 20/s take about 3 seconds.
    assert starts[-1] - starts[0] < 3.5


def test_below_one_call_per_second_the_window_stretches():
    assert window_and_limit(0.5) == (2.0, 1)
    assert window_and_limit(1) == (1.0, 1)
    assert window_and_limit(7.9) == (1.0, 7)


def test_the_concurrent_call_limit_holds_calls_back_until_lines_free_up(dialer):
    from dataclasses import replace

    dialer.runtime.settings = replace(dialer.runtime.settings, max_concurrent_calls=1)
    for phone in ("+14155550320", "+14155550321"):
        dialer.network.set_persona(phone, Persona.answering(["9", "5"]))
    first, second = dialer.intake("+14155550320"), dialer.intake("+14155550321")
    scheduling.release_due_jobs(dialer.queue, dialer.now())
    dialer.worker.work(burst=True)  # both jobs run; the calls have not ended yet
    assert len(dialer.attempts(first.request_id)) == 1
    assert dialer.attempts(second.request_id) == []
    held = dialer.campaign.request(second.request_id)
    assert (held.state, held.due_at) == (
        RequestState.SCHEDULED,
        dialer.now() + timedelta(seconds=10),
    )
    dialer.run_to_completion()
    for result in (first, second):
        assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED


def test_a_job_left_over_from_before_a_reschedule_does_not_call_early(dialer):
    result = dialer.intake("+14155550330")
    later = result.due_at + timedelta(hours=2)
    with dialer.runtime.db.session() as session:
        session.get(SurveyRequest, result.request_id).due_at = later
    outcome = dispatch.dial(dialer.runtime, result.request_id, 1)
    assert outcome.startswith("skipped: not due until")
    assert dialer.network.calls == []


def test_reconcile_runs_the_follow_up_that_redis_lost(dialer):
    dialer.network.set_persona("+14155550340", Persona.busy())
    result = dialer.intake("+14155550340")
    scheduling.release_due_jobs(dialer.queue, dialer.now())
    dialer.worker.work(burst=True)
    dialer.network.run_until_idle(timeout=30)  # busy; the webhook queues the follow-up...
    dialer.runtime.redis.flushdb()  # ...which Redis then loses
    request = dialer.campaign.request(result.request_id)
    assert request.state is RequestState.BUSY and request.due_at is not None
    dialer.network.clock.set(dialer.now() + timedelta(minutes=3))
    # The follow-up's grace is wall-clock time (it waits for a real rq job): none here.
    assert scheduling.reconcile(dialer.runtime, NO_FOLLOW_UP_GRACE) == 1
    dialer.worker.work(burst=True)
    retried = dialer.campaign.request(result.request_id)
    assert retried.state is RequestState.SCHEDULED
    assert retried.due_at >= dialer.now() + timedelta(minutes=27)  # the 30-minute backoff
    assert scheduling.reconcile(dialer.runtime) == 0  # its call job exists


def test_settled_outcomes_are_not_followed_up_again(dialer):
    dialer.network.set_persona("+14155550341", Persona.machine())
    result = dialer.intake("+14155550341")
    dialer.run_to_completion()
    request = dialer.campaign.request(result.request_id)
    assert (request.state, request.due_at) == (RequestState.VOICEMAIL, None)
    dialer.network.clock.set(dialer.now() + timedelta(minutes=10))
    assert scheduling.reconcile(dialer.runtime) == 0


def test_a_claim_left_by_a_dead_worker_is_released_and_retried(dialer):
    phone = "+14155550350"
    dialer.network.set_persona(phone, Persona.answering(["9", "5"]))
    result = dialer.intake(phone)
    # A worker claimed the request and wrote its attempt, then died before Twilio.
    with dialer.runtime.db.session() as session:
        request = session.get(SurveyRequest, result.request_id)
        request.state = RequestState.CALLING
        request.calls_placed = 1
        session.add(CallAttempt(request_id=request.id, number=1, status="queued",
                                created_at=dialer.now()))  # fmt: skip
    dialer.runtime.redis.flushdb()
    dialer.network.clock.set(dialer.now() + timedelta(minutes=16))
    # Too early to call it lost: had Twilio placed the call, it could still be going on.
    assert scheduling.reconcile(dialer.runtime) == 0
    dialer.network.clock.set(dialer.now() + FINAL_STATUS_OVERDUE)
    assert scheduling.reconcile(dialer.runtime) == 1
    dialer.run_to_completion()
    attempts = dialer.attempts(result.request_id)
    assert [a.status for a in attempts] == ["lost", "completed"]
    assert dialer.campaign.request(result.request_id).state is RequestState.COMPLETED
    assert len(dialer.network.calls) == 1


def test_reconcile_counts_no_in_call_transfer_as_a_call(dialer):
    """A request called back after its in-call survey was hung up has an inbound attempt
    and its first outbound call job: reconciliation must find that job, not queue one
    for a second call."""
    result = dialer.intake("+14155550391", ended_minutes_ago=1)
    with dialer.runtime.db.session() as session:
        session.add(
            CallAttempt(request_id=result.request_id, number=1, direction="inbound",
                        status="completed", call_sid="CA" + "e" * 32)
        )  # fmt: skip
    assert scheduling.reconcile(dialer.runtime) == 0
