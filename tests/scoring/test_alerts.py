"""Detractor alerts end to end: signed Twilio webhooks through the Flask test client, the
alert outbox row written with the answer, the worker's drain queuing the alert job on a
real Redis, the job run by an in-process rq worker, and a real HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from aftercall import cron
from aftercall.web import create_app
from aftercall.wiring import PROCESS_WIRING
from core.models import AlertOutbox, Answer, CallAttempt, FollowUp
from core.runtime import Runtime, use_worker_runtime
from dialer.scheduling import CALL_QUEUE, release_due_jobs
from phonesim import BackgroundServer
from scoring import alerts
from scoring import jobs as scoring_jobs
from tests.conftest import PUBLIC_BASE_URL
from tests.ivr.conftest import SignedCall

pytestmark = pytest.mark.redis

SECRET = "whsec-test-secret"
PHONE = "+14155550123"


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A CRM's webhook endpoint: records every post, answers with scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            self.deliveries.append(Delivery(dict(request.headers), request.get_data()))
            status = self.statuses.pop(0) if self.statuses else 204
        return Response(status=status)(environ, start_response)


@pytest.fixture
def receiver():
    receiver = Receiver()
    server = BackgroundServer(receiver).start()
    receiver.url = f"{server.base_url}/hooks/aftercall"
    yield receiver
    server.stop()


def configured(runtime: Runtime, redis_url: str, **overrides: str) -> Runtime:
    settings = runtime.settings.with_overrides(redis_url=redis_url, **overrides)
    return Runtime(wiring=PROCESS_WIRING, settings=settings, db=runtime.db, catalog=runtime.catalog)


@pytest.fixture
def alerting(runtime, redis_url, receiver):
    """The runtime of the web and worker processes, with alerts posted to `receiver`."""
    live = configured(
        runtime, redis_url, alert_webhook_url=receiver.url, alert_webhook_secret=SECRET
    )
    use_worker_runtime(live)
    yield live
    use_worker_runtime(None)


def open_call(runtime: Runtime, make_attempt) -> SignedCall:
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    attempt = make_attempt(phone=PHONE)
    return SignedCall(app.test_client(), attempt.id, attempt.call_sid, PHONE)


def request_id_of(runtime: Runtime, call: SignedCall) -> int:
    with runtime.db.session() as session:
        return session.get(CallAttempt, call.attempt_id).request_id


def alert_queue(runtime: Runtime) -> Queue:
    return Queue(alerts.ALERT_QUEUE, connection=runtime.redis)


def owed(runtime: Runtime) -> list[tuple[int, bool]]:
    """The alert outbox: (request id, queued yet) per row."""
    with runtime.db.session() as session:
        rows = session.execute(
            select(AlertOutbox.request_id, AlertOutbox.queued_at).order_by(AlertOutbox.id)
        ).all()
    return [(request_id, queued_at is not None) for request_id, queued_at in rows]


def work(runtime: Runtime) -> None:
    """What the worker does within seconds: the cron's drain of the outbox, then the jobs."""
    alerts.queue_due_alerts(runtime)
    SimpleWorker([alert_queue(runtime)], connection=runtime.redis).work(burst=True)


def run_due_retries(runtime: Runtime, after: timedelta) -> int:
    """What rq's scheduler does once `after` has passed on the wall clock."""
    released = release_due_jobs(alert_queue(runtime), datetime.now(UTC) + after)
    work(runtime)
    return released


def test_a_detractor_answer_owes_one_alert_which_the_drain_queues_as_one_job(
    alerting, make_attempt
):
    call = open_call(alerting, make_attempt)
    first = call.start()
    after_nps = call.press(first, "3")
    assert after_nps.root.find("./Gather") is not None  # on to CSAT
    request_id = request_id_of(alerting, call)
    queue = alert_queue(alerting)
    # The webhook wrote the outbox row with the answer and did not touch Redis.
    assert owed(alerting) == [(request_id, False)]
    assert queue.count == 0
    assert alerts.queue_due_alerts(alerting) == 1
    assert owed(alerting) == [(request_id, True)]
    assert queue.job_ids == [f"detractor-alert-{request_id}"]
    job = queue.jobs[0]
    assert job.func_name == "scoring.alerts.deliver_detractor_alert"
    assert job.args == (request_id,)
    assert job.retries_left == 5
    assert job.retry_intervals == [10, 30, 60, 300, 900]
    assert Queue(CALL_QUEUE, connection=alerting.redis).count == 0

    assert call.press(first, "3").body == after_nps.body  # Twilio redelivers the NPS
    call.press(after_nps, "1")  # and a low CSAT follows
    assert owed(alerting) == [(request_id, True)]
    assert alerts.queue_due_alerts(alerting) == 0
    assert queue.job_ids == [f"detractor-alert-{request_id}"]


def test_the_drain_is_safe_to_run_twice_and_queues_one_job_per_request(alerting, make_attempt):
    first, second = open_call(alerting, make_attempt), open_call(alerting, make_attempt)
    first.press(first.start(), "2")
    second.press(second.start(), "4")
    ids = [request_id_of(alerting, first), request_id_of(alerting, second)]
    queue = alert_queue(alerting)
    # The job of the first is already there (a drain that queued it, then died before
    # noting its row): the drain notes the row and queues no second job.
    alerts.enqueue_alert(queue, ids[0])
    assert alerts.queue_due_alerts(alerting) == 2
    assert alerts.queue_due_alerts(alerting) == 0
    assert sorted(queue.job_ids) == sorted(f"detractor-alert-{i}" for i in ids)
    assert owed(alerting) == [(ids[0], True), (ids[1], True)]


def test_the_cron_drains_the_outbox_every_few_seconds(redis_url):
    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    scheduler.load_config_from_file("aftercall.cron")  # what `rq cron aftercall.cron` does
    (job,) = [job for job in scheduler.get_jobs() if job.func is scoring_jobs.queue_alerts]
    assert job.queue_name == alerts.ALERT_QUEUE
    assert job.interval == cron.ALERT_DRAIN_SECONDS <= 5
    assert job.job_options["result_ttl"] == 0


def test_a_low_csat_after_the_alert_was_delivered_does_not_alert_again(
    alerting, receiver, make_attempt
):
    call = open_call(alerting, make_attempt)
    after_nps = call.press(call.start(), "5")
    work(alerting)
    call.press(after_nps, "1")
    work(alerting)
    assert len(receiver.deliveries) == 1
    assert alert_queue(alerting).count == 0


def test_the_receiver_gets_the_signed_json(alerting, receiver, make_attempt):
    call = open_call(alerting, make_attempt)
    call.press(call.start(), "2")
    request_id = request_id_of(alerting, call)
    before = time.time()
    work(alerting)

    (delivery,) = receiver.deliveries
    headers = delivery.headers
    assert headers["Content-Type"] == "application/json"
    assert abs(int(headers["X-Aftercall-Timestamp"]) - before) < 5
    assert headers["X-Aftercall-Signature"].startswith("sha256=")
    assert alerts.verify_signature(
        SECRET, headers["X-Aftercall-Timestamp"], delivery.body, headers["X-Aftercall-Signature"]
    )
    payload = delivery.json
    sent_at = payload.pop("sent_at")
    assert datetime.fromisoformat(sent_at).timestamp() == int(headers["X-Aftercall-Timestamp"])
    follow_up = payload.pop("follow_up")
    # The follow-up the alert's job opened: its id, and where to find it.
    assert follow_up.pop("id") > 0
    assert follow_up.pop("due_at").endswith("Z")
    assert follow_up == {
        "status": "new",
        "owner": None,
        "reason": "nps 2 <= 6",
        "link": f"{PUBLIC_BASE_URL}/dashboard/follow-ups/{follow_up_id(alerting, request_id)}",
        "api": f"{PUBLIC_BASE_URL}/api/v1/follow-ups/{follow_up_id(alerting, request_id)}",
    }
    assert payload == {
        "event": "detractor",
        "alert_id": f"detractor-alert-{request_id}",
        "request_id": request_id,
        "source_call_id": "support-call-1",
        "agent": "alice",
        "queue": "billing",
        "team": "north",
        "language": "en",
        "survey": "post-call",
        "call_ended_at": "2026-11-23T10:00:00Z",
        "channel": "voice",
        "answers": {"nps": 2},
        "answer_set": [
            {"question": "nps", "kind": "nps", "value": 2, "input": "keys", "transcript": None}
        ],
        "comment": None,
        "link": f"{PUBLIC_BASE_URL}/api/v1/survey-requests/{request_id}",
    }
    job = Job.fetch(f"detractor-alert-{request_id}", connection=alerting.redis)
    assert job.get_status() == JobStatus.FINISHED


def test_the_alert_carries_every_answer_stored_when_it_runs(alerting, receiver, make_attempt):
    call = open_call(alerting, make_attempt)
    reply = call.record(call.press(call.press(call.start(), "3"), "1"), seconds=7)
    assert reply.verbs() == ["Say", "Hangup"]
    call.post(
        f"{call.base}/questions/improve/transcription",
        call.params(TranscriptionText="Nobody called me back", TranscriptionStatus="completed"),
    )
    work(alerting)
    (delivery,) = receiver.deliveries
    assert delivery.json["answers"] == {"nps": 3, "csat": 1}
    comment = delivery.json["comment"]
    assert comment["question"] == "improve"
    assert comment["transcript"] == "Nobody called me back"
    assert comment["recording_url"].endswith("/Recordings/RE1")


def test_a_failing_receiver_is_retried_then_succeeds(alerting, receiver, make_attempt):
    receiver.statuses = [500]
    call = open_call(alerting, make_attempt)
    call.press(call.start(), "0")
    job_id = f"detractor-alert-{request_id_of(alerting, call)}"
    work(alerting)
    assert len(receiver.deliveries) == 1
    assert job_id in ScheduledJobRegistry(queue=alert_queue(alerting)).get_job_ids()

    assert run_due_retries(alerting, timedelta(seconds=5)) == 0  # not before 10 s
    assert run_due_retries(alerting, timedelta(seconds=11)) == 1
    first, second = receiver.deliveries
    assert second.json["alert_id"] == first.json["alert_id"] == job_id
    assert alerts.verify_signature(
        SECRET,
        second.headers["X-Aftercall-Timestamp"],
        second.body,
        second.headers["X-Aftercall-Signature"],
    )
    job = Job.fetch(job_id, connection=alerting.redis)
    assert job.get_status() == JobStatus.FINISHED
    assert job.retries_left == 4


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_transient_failures_are_retried(alerting, receiver, make_attempt, status):
    receiver.statuses = [status]
    call = open_call(alerting, make_attempt)
    call.press(call.start(), "4")
    work(alerting)
    assert len(ScheduledJobRegistry(queue=alert_queue(alerting))) == 1
    run_due_retries(alerting, timedelta(seconds=11))
    assert len(receiver.deliveries) == 2


def test_an_unreachable_receiver_is_retried(runtime, redis_url, make_attempt):
    live = configured(
        runtime, redis_url, alert_webhook_url="http://127.0.0.1:1/", alert_webhook_secret=SECRET
    )
    use_worker_runtime(live)
    try:
        call = open_call(live, make_attempt)
        call.press(call.start(), "6")
        work(live)
    finally:
        use_worker_runtime(None)
    job = Job.fetch(f"detractor-alert-{request_id_of(live, call)}", connection=live.redis)
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.retries_left == 4


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_a_refusal_is_not_retried(alerting, receiver, make_attempt, status):
    receiver.statuses = [status]
    call = open_call(alerting, make_attempt)
    call.press(call.start(), "5")
    job_id = f"detractor-alert-{request_id_of(alerting, call)}"
    work(alerting)
    queue = alert_queue(alerting)
    assert run_due_retries(alerting, timedelta(hours=1)) == 0
    assert len(receiver.deliveries) == 1
    assert len(ScheduledJobRegistry(queue=queue)) == 0
    assert len(FailedJobRegistry(queue=queue)) == 0
    job = Job.fetch(job_id, connection=alerting.redis)
    assert job.return_value() == f"refused: HTTP {status}"


def test_a_job_that_keeps_failing_ends_in_the_failed_registry(alerting, receiver, make_attempt):
    receiver.statuses = [500] * 6
    call = open_call(alerting, make_attempt)
    call.press(call.start(), "3")
    work(alerting)
    for wait in (10, 30, 60, 300, 900):
        assert run_due_retries(alerting, timedelta(seconds=wait + 1)) == 1
    assert len(receiver.deliveries) == 6
    assert len(FailedJobRegistry(queue=alert_queue(alerting))) == 1
    assert len(ScheduledJobRegistry(queue=alert_queue(alerting))) == 0


def test_promoters_and_passives_queue_nothing(alerting, receiver, make_attempt):
    call = open_call(alerting, make_attempt)
    reply = call.press(call.press(call.start(), "7"), "3")
    assert reply.verbs() == ["Say", "Hangup"]
    assert owed(alerting) == []
    assert alert_queue(alerting).count == 0
    work(alerting)
    assert receiver.deliveries == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"alert_webhook_url": "", "alert_webhook_secret": ""},
        {"alert_webhook_url": "", "alert_webhook_secret": SECRET},
        # A URL without a secret would send alerts nobody can verify: off, and logged.
        {"alert_webhook_url": "http://127.0.0.1:9/hook", "alert_webhook_secret": ""},
    ],
)
def test_alerts_off_queues_nothing(runtime, redis_url, make_attempt, overrides):
    off = configured(runtime, redis_url, **overrides)
    call = open_call(off, make_attempt)
    reply = call.press(call.press(call.start(), "0"), "1")
    assert reply.root.find("./Record") is not None
    assert owed(off) == []  # no outbox row at all
    assert alerts.queue_due_alerts(off) == 0
    assert alert_queue(off).count == 0
    assert off.redis.keys("rq:*") == []


def test_redis_down_still_answers_with_the_next_question_quickly(runtime, make_attempt):
    down = Runtime(
        wiring=PROCESS_WIRING,
        settings=runtime.settings.with_overrides(
            redis_url="redis://127.0.0.1:1/0",
            alert_webhook_url="http://127.0.0.1:9/hook",
            alert_webhook_secret=SECRET,
        ),
        db=runtime.db,
        catalog=runtime.catalog,
    )
    call = open_call(down, make_attempt)
    started = time.monotonic()
    reply = call.press(call.start(), "2")
    assert time.monotonic() - started < 2
    gather = reply.root.find("./Gather")
    assert gather is not None
    assert gather.get("action").startswith(f"{call.base}/questions/csat")
    with runtime.db.session() as session:
        (answer,) = session.scalars(select(Answer)).all()
        assert (answer.question_key, answer.value) == ("nps", 2)


def test_an_alert_survives_a_redis_outage(runtime, redis_url, receiver, make_attempt):
    """Redis down when the detractor answers, and still down at the first drains: the
    alert waits in the outbox, and goes out once Redis is back."""
    settings = {"alert_webhook_url": receiver.url, "alert_webhook_secret": SECRET}
    down = configured(runtime, "redis://127.0.0.1:1/0", **settings)
    call = open_call(down, make_attempt)
    assert call.press(call.start(), "2").root.find("./Gather") is not None
    # Voice and text alike: an SMS answer owes its alert the same way (tests/sms).
    request_id = request_id_of(down, call)
    assert owed(down) == [(request_id, False)]
    with pytest.raises(RedisError):
        alerts.queue_due_alerts(down)  # the worker's drain while Redis is still down
    assert owed(down) == [(request_id, False)]

    back = configured(runtime, redis_url, **settings)
    use_worker_runtime(back)
    try:
        work(back)
    finally:
        use_worker_runtime(None)
    (delivery,) = receiver.deliveries
    assert delivery.json["alert_id"] == f"detractor-alert-{request_id}"
    assert delivery.json["answers"] == {"nps": 2}
    assert owed(back) == [(request_id, True)]


def test_an_admins_test_call_sends_no_alert(alerting, receiver, make_attempt):
    from core.models import SurveyRequest
    from dialer.trial_call import TEST_CALL_FLAG, TEST_CALL_PREFIX

    call = open_call(alerting, make_attempt)
    with alerting.db.session() as session:
        request = session.get(SurveyRequest, request_id_of(alerting, call))
        request.source_call_id = f"{TEST_CALL_PREFIX}abc"
        request.extra = {TEST_CALL_FLAG: True, "requested_by": "ops"}
        request.is_test = True  # marked as dialer.trial_call.schedule_test_call marks it
    call.press(call.start(), "2")
    work(alerting)
    assert receiver.deliveries == []


def test_a_job_for_a_request_without_detractor_answers_sends_nothing(alerting, receiver):
    assert alerts.deliver(alerting, 999_999).startswith("request 999999 is not a detractor")
    assert receiver.deliveries == []


# -- signatures ---------------------------------------------------------------------------

BODY = b'{"event":"detractor","request_id":1}'
NOW = 1_790_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert alerts.signature(SECRET, NOW, BODY) == f"sha256={expected}"


def test_a_valid_signature_verifies():
    header = alerts.signature(SECRET, NOW, BODY)
    assert alerts.verify_signature(SECRET, str(NOW), BODY, header, now=NOW + 299)


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "header", "now"),
    [
        ("other-secret", str(NOW), BODY, None, NOW),
        (SECRET, str(NOW), BODY + b" ", None, NOW),
        (SECRET, str(NOW + 1), BODY, None, NOW),
        (SECRET, str(NOW), BODY, None, NOW + 301),  # a replay, too late
        (SECRET, str(NOW), BODY, None, NOW - 301),  # from the future
        (SECRET, "", BODY, None, NOW),
        (SECRET, "-1", BODY, None, NOW),
        (SECRET, str(NOW), BODY, "sha256=", NOW),
        (SECRET, str(NOW), BODY, "sha256=zz", NOW),
        (SECRET, str(NOW), BODY, "md5=abc", NOW),
    ],
)
def test_a_wrong_stale_or_malformed_signature_is_refused(secret, timestamp, body, header, now):
    if header is None:
        header = alerts.signature(SECRET, str(NOW), BODY)
    assert not alerts.verify_signature(secret, timestamp, body, header, now=now)


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (403, True), (404, True), (410, True), (408, False), (429, False),
     (500, False), (503, False), (301, False)],
)  # fmt: skip
def test_which_statuses_are_permanent_refusals(status, permanent):
    assert alerts.is_permanent_refusal(status) is permanent


def follow_up_id(runtime, request_id: int) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(FollowUp.id).where(FollowUp.request_id == request_id))
