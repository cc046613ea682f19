"""The rq jobs of the SMS channel: build the worker's Runtime, call the domain, return a
note. Texts go out on their own queue, paced through the same Redis limiter as calls
(core.pacing, its own log and MESSAGES_PER_SECOND)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.runtime import worker_runtime
from sms import conversation, sender
from sms.outbox import MESSAGE_QUEUE, RETRY, SEND_TEXT, queue_texts

# A pending text older than this lost its job: queued again.
LOST_AFTER = timedelta(minutes=2)


def send_text(message_id: int) -> str:
    """Send one text, when the pacer allows: a slot per segment."""
    runtime = worker_runtime()
    wait = sender.pace(runtime, sender.segments_of(runtime, message_id))
    if wait is not None:
        later = datetime.now(UTC) + timedelta(seconds=wait)
        runtime.queue(MESSAGE_QUEUE).enqueue_at(later, SEND_TEXT, message_id, retry=RETRY)
        return "rescheduled: pacing"
    return sender.send(runtime, message_id)


def expire_conversations() -> int:
    return conversation.expire(worker_runtime())


def resend_pending() -> int:
    """Queue again the texts whose job was lost (Redis restarted, an enqueue failed)."""
    runtime = worker_runtime()
    lost = conversation.pending_texts(runtime, LOST_AFTER)
    queue_texts(runtime, lost)
    return len(lost)
