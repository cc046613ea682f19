"""Detractor alerts: a signed JSON webhook posted when a customer answers as a detractor.

The web process never touches the job queue for an alert. `alert_wanted()` is the rule
wired into every Runtime (aftercall.wiring, core.events): when an answer is a detractor's
(NPS <= 6 or CSAT <= 2, scoring.detractors) and alerts are configured, the answer's own
statement or transaction also writes the request's row in the alert outbox
(core.models.AlertOutbox, one per request). The worker drains it: `queue_due_alerts()`,
run every few seconds by the cron process (aftercall.cron), puts
`deliver_detractor_alert(request_id)` on the `alerts` queue, once per request (a fixed
job id, enqueued with rq's atomic `unique=True`), and notes the row queued in the same
transaction that read it. Redis being down costs the call nothing and loses no alert:
the row waits, and the first drain after Redis is back queues it.

The job reads the request and its answers so far from the database, posts them to
`ALERT_WEBHOOK_URL` signed with `ALERT_WEBHOOK_SECRET` (HMAC-SHA256 over
"<timestamp>.<body>", see `signature()` and `verify_signature()`), and raises on a
network error or a non-2xx answer so that rq retries it with backoff. A 4xx other than
408/429 means the receiver refuses this alert and will keep refusing it: the job logs it
and gives up. Delivery is at least once; every post of one alert carries the same
`alert_id` for the receiver to drop repeats. docs/alerts.md is the receiver's manual.

The job first opens the request's follow-up (scoring.follow_ups, idempotent) so that
the alert carries its id and dashboard link; that is the only row it writes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import requests
from rq import Retry
from rq.exceptions import DuplicateJobError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.config import Settings
from core.events import AnswerGiven
from core.models import AlertOutbox, Answer, FollowUp, SurveyRequest
from core.runtime import Runtime, worker_runtime
from scoring.detractors import is_detractor_answer
from scoring.follow_ups import open_follow_up

log = logging.getLogger(__name__)

ALERT_QUEUE = "alerts"  # the queue these jobs run on
DELIVER_JOB = "scoring.alerts.deliver_detractor_alert"
# 10 s, 30 s, 1 min, 5 min, 15 min: a receiver restarting or briefly overloaded gets
# about 20 minutes to come back before the alert lands in rq's failed job registry.
RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])
# The finished job stays in Redis this long, and while it does, its id keeps a later
# detractor answer on the same request (CSAT after NPS, a second attempt) from alerting
# again. A survey call lasts minutes; a day is ample.
DONE_JOB_TTL_SECONDS = 24 * 3600
FAILED_JOB_TTL_SECONDS = 7 * 24 * 3600
POST_TIMEOUT_SECONDS = 5
# Receivers should refuse signatures older than this (docs/alerts.md).
SIGNATURE_TOLERANCE_SECONDS = 300
SIGNATURE_PREFIX = "sha256="
# Timeouts and rate limiting are the receiver's "later, please"; every other 4xx is a
# refusal that repeating the same request will not change.
TRANSIENT_CLIENT_ERRORS = frozenset({408, 429})


class AlertDeliveryError(Exception):
    """The receiver did not take the alert this time; rq retries the job."""


# -- the web side: the rule that says an answer owes an alert --------------------------


def alert_job_id(request_id: int) -> str:
    return f"detractor-alert-{request_id}"


def alerts_enabled(settings: Settings) -> bool:
    return bool(settings.alert_webhook_url and settings.alert_webhook_secret)


def alert_wanted(runtime: Runtime, event: AnswerGiven) -> bool:
    """Whether an answer owes its request a detractor alert (core.events.AlertRule):
    a detractor's answer, with alerts configured. Pure and cheap: every answer asks."""
    if not is_detractor_answer(event.kind, event.value):
        return False
    settings = runtime.settings
    if not alerts_enabled(settings):
        if settings.alert_webhook_url:
            log.error("ALERT_WEBHOOK_URL is set but ALERT_WEBHOOK_SECRET is not: alerts are off")
        return False
    return True


# -- the worker side: the outbox drained onto the alerts queue ---------------------------

# Rows read per drain: a burst bigger than this is drained by the next runs, seconds apart.
DRAIN_BATCH = 500
_OUTBOX = AlertOutbox.__table__
_DUE = (
    select(_OUTBOX.c.id, _OUTBOX.c.request_id)
    .where(_OUTBOX.c.queued_at.is_(None))
    .order_by(_OUTBOX.c.id)
    .limit(DRAIN_BATCH)
    # Two drains at once (a slow one overtaken by the next) take different rows; the
    # fixed job id would keep a row taken twice to one job anyway.
    .with_for_update(skip_locked=True)
)


def queue_due_alerts(runtime: Runtime) -> int:
    """Queue the alert job of every outbox row not queued yet, and note them queued in
    the transaction that read them. Safe to run twice, or at once: a job already queued
    for the request (its fixed id) is not queued again, and a row is noted only once
    Redis has taken its job. If Redis fails, nothing is noted and the next run retries.
    Returns how many rows were queued (or found already queued)."""
    with runtime.db.session() as session:
        rows = session.execute(_DUE).all()
        if not rows:
            return 0
        queue = runtime.queue(ALERT_QUEUE)
        for row in rows:
            enqueue_alert(queue, row.request_id)
        session.execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_([row.id for row in rows]))
            .values(queued_at=runtime.now())
        )
    return len(rows)


def enqueue_alert(queue: Any, request_id: int) -> bool:
    """Put one request's alert job on the alerts queue unless its id is there already
    (queued, running, retrying, or done within DONE_JOB_TTL_SECONDS). Raises RedisError."""
    try:
        queue.enqueue(
            DELIVER_JOB,
            request_id,
            job_id=alert_job_id(request_id),
            unique=True,
            retry=RETRY,
            result_ttl=DONE_JOB_TTL_SECONDS,
            failure_ttl=FAILED_JOB_TTL_SECONDS,
            description=f"detractor alert for survey request {request_id}",
        )
    except DuplicateJobError:
        return False  # this request already alerted (or is alerting)
    return True


# -- the worker side: the rq job ---------------------------------------------------------


def deliver_detractor_alert(request_id: int) -> str:
    """The rq job: post the alert for one survey request. Returns a note for rq's result."""
    return deliver(worker_runtime(), request_id)


def deliver(runtime: Runtime, request_id: int, now: float | None = None) -> str:
    settings = runtime.settings
    if not alerts_enabled(settings):
        log.warning("request %s: detractor alert dropped, alerts are not configured", request_id)
        return "alerts are off"
    timestamp = int(time.time() if now is None else now)
    with runtime.db.session() as session:
        follow_up = open_follow_up(
            session, request_id, now=runtime.now(), owners=settings.follow_up_owners
        )
        payload = detractor_alert(
            session,
            request_id,
            public_base_url=settings.public_base_url,
            sent_at=timestamp,
            follow_up=follow_up,
        )
    if payload is None:
        return f"request {request_id} is not a detractor (or no longer exists): nothing sent"
    body = encode(payload)
    return post_alert(
        settings.alert_webhook_url, settings.alert_webhook_secret, body, timestamp, request_id
    )


def detractor_alert(
    session: Session,
    request_id: int,
    *,
    public_base_url: str,
    sent_at: int,
    follow_up: FollowUp | None = None,
) -> dict[str, Any] | None:
    """The alert's JSON for a request with at least one detractor answer, else None
    (also for an admin's test call: its low scores are nobody's to follow up)."""
    request = session.get(SurveyRequest, request_id)
    if request is None or request.is_test:
        return None
    rows = session.scalars(
        select(Answer).where(Answer.request_id == request_id).order_by(Answer.id)
    ).all()
    if not any(is_detractor_answer(row.kind, row.value) for row in rows):
        return None
    answers: dict[str, int | None] = {}
    comment: dict[str, Any] | None = None
    given = [
        {
            "question": row.question_key,
            "kind": row.kind,
            "value": row.value,
            "input": row.input,
            "transcript": row.transcript,
        }
        for row in rows
    ]
    for row in rows:
        if row.kind == "comment":
            comment = {
                "question": row.question_key,
                "transcript": row.transcript,
                "recording_url": row.recording_url,
            }
        else:
            answers[row.question_key] = row.value
    return {
        "event": "detractor",
        "alert_id": alert_job_id(request.id),
        "request_id": request.id,
        "source_call_id": request.source_call_id,
        "agent": request.agent,
        "queue": request.queue,
        "team": request.team,
        "language": request.language,
        "survey": request.survey_name,
        "call_ended_at": _iso(request.call_ended_at),
        "channel": request.channel.value,
        "answers": answers,
        # The whole answer set, each with how it was given (keys, speech, text).
        "answer_set": given,
        "comment": comment,
        "follow_up": None
        if follow_up is None
        else {
            "id": follow_up.id,
            "status": follow_up.status,
            "owner": follow_up.owner,
            "due_at": _iso(follow_up.due_at),
            "reason": follow_up.reason,
            # The dashboard's page of it (sign-in needed), and the API's (a key with the
            # follow-ups scope): a CRM mirrors it from there.
            "link": f"{public_base_url}/dashboard/follow-ups/{follow_up.id}",
            "api": f"{public_base_url}/api/v1/follow-ups/{follow_up.id}",
        },
        # Needs an API key (Authorization: Bearer ...); see docs/api.md.
        "link": f"{public_base_url}/api/v1/survey-requests/{request.id}",
        "sent_at": _iso(datetime.fromtimestamp(sent_at, UTC)),
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def post_alert(url: str, secret: str, body: bytes, timestamp: int, request_id: int) -> str:
    """Post one signed alert. Raises AlertDeliveryError (or requests' own errors) when a
    retry may succeed; returns a note when it was delivered or refused for good."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "aftercall-alerts",
        "X-Aftercall-Timestamp": str(timestamp),
        "X-Aftercall-Signature": signature(secret, timestamp, body),
    }
    # No redirects: requests would follow a 301/302 with a GET and drop the body.
    response = requests.post(
        url, data=body, headers=headers, timeout=POST_TIMEOUT_SECONDS, allow_redirects=False
    )
    status = response.status_code
    if 200 <= status < 300:
        log.info("request %s: detractor alert delivered (HTTP %s)", request_id, status)
        return f"delivered: HTTP {status}"
    if is_permanent_refusal(status):
        log.error(
            "request %s: the alert receiver refused the detractor alert with HTTP %s, "
            "not retrying: %s",
            request_id,
            status,
            response.text[:200],
        )
        return f"refused: HTTP {status}"
    raise AlertDeliveryError(f"request {request_id}: alert receiver answered HTTP {status}")


def is_permanent_refusal(status: int) -> bool:
    return 400 <= status < 500 and status not in TRANSIENT_CLIENT_ERRORS


# -- signatures: shared by the sender, receivers written in Python, and the tests --------


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The X-Aftercall-Signature value: "sha256=" + hex HMAC-SHA256 of "<timestamp>.<body>"."""
    message = str(timestamp).encode() + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature_header: str,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether a received alert is authentic and fresh.

    `timestamp` and `signature_header` are the X-Aftercall-Timestamp and
    X-Aftercall-Signature headers, `body` the raw request body (before any JSON
    parsing). A timestamp more than `tolerance` seconds away from `now` is refused, so a
    captured request cannot be replayed later; drop repeats of an `alert_id` as well.
    """
    if not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature_header.strip().encode())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
