"""The rq jobs of the SMS channel: build the worker's Runtime, call the domain, return a
note. Texts go out on their own queue, paced through the same Redis limiter as calls
(core.pacing, its own log and MESSAGES_PER_SECOND)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.runtime import worker_runtime
from sms import conversation, sender
from sms.outbox import MESSAGE_QUEUE, RETRY, SEND_TEXT, queue_texts, text_job_id

# A pending text older than this lost its job: queued again.
LOST_AFTER = timedelta(minutes=2)


def send_text(message_id: int) -> str:
    """Send one text, when the pacer allows: a slot per segment."""
    runtime = worker_runtime()
    if not sender.is_pending(runtime, message_id):
        return "skipped: not pending"  # sent, canceled, or being sent: no slot spent
    wait = sender.pace(runtime, sender.segments_of(runtime, message_id))
    if wait is not None:
        # The same job id, rescheduled: the text's one job waits for the pacer.
        later = datetime.now(UTC) + timedelta(seconds=wait)
        runtime.queue(MESSAGE_QUEUE).enqueue_at(
            later,
            SEND_TEXT,
            message_id,
            job_id=f"{text_job_id(message_id)}-{int(later.timestamp())}",
            retry=RETRY,
        )
        return "rescheduled: pacing"
    return sender.send(runtime, message_id)


def expire_conversations() -> int:
    return conversation.expire(worker_runtime())


def resend_pending() -> int:
    """Queue again the texts whose job was lost (Redis restarted, an enqueue failed);
    not those whose job is still queued or waiting for the pacer."""
    runtime = worker_runtime()
    queue = runtime.queue(MESSAGE_QUEUE)
    waiting = {
        job_id.split("-")[2]
        for job_id in (*queue.get_job_ids(), *queue.scheduled_job_registry.get_job_ids())
        if job_id.startswith("sms-text-")
    }
    lost = [m for m in conversation.pending_texts(runtime, LOST_AFTER) if str(m) not in waiting]
    queue_texts(runtime, lost)
    return len(lost)
