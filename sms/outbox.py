"""Putting texts on the messages queue: one rq job per text, after the commit that
decided it (a job for an uncommitted text would find nothing to send)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis.exceptions import RedisError
from rq import Retry
from rq.exceptions import DuplicateJobError

from core.runtime import Runtime

log = logging.getLogger(__name__)

MESSAGE_QUEUE = "messages"
SEND_TEXT = "sms.jobs.send_text"
# Twilio's 429s and 5xx: tried again, later each time.
RETRY = Retry(max=4, interval=[10, 60, 300, 900])


def text_job_id(message_id: int) -> str:
    return f"sms-text-{message_id}"


def queue_texts(runtime: Runtime, message_ids: Iterable[int]) -> None:
    """Queue committed texts, a job each under a fixed id: a text already queued (or
    waiting for the pacer) is not queued twice. A Redis failure is logged and left to
    the cron's `sms.jobs.resend_pending()`, which finds pending texts in the database."""
    ids = list(message_ids)
    try:
        for message_id in ids:
            try:
                runtime.queue(MESSAGE_QUEUE).enqueue(
                    SEND_TEXT,
                    message_id,
                    job_id=text_job_id(message_id),
                    unique=True,
                    retry=RETRY,
                    description=f"text {message_id}",
                    failure_ttl=7 * 24 * 3600,
                    result_ttl=600,
                )
            except DuplicateJobError:
                continue  # its job is queued already
    except RedisError as exc:
        log.error("could not queue texts %s (resent within minutes): %s", ids, exc)
