"""What every aftercall process hands the core when it builds its Runtime: rq as the job
queue, and the listeners of what one domain tells another (core.events).

The core knows no job queue library and no domain (docs/architecture.md); the web app,
the CLI, the worker and the demo build their Runtime here, so every process is wired the
same way.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue

from core.config import Settings
from core.events import AnswerGiven
from core.runtime import Runtime, Wiring
from scoring.alerts import queue_detractor_alert
from sms.sender import start as start_text_survey


def rq_queue(name: str, redis: Redis) -> Queue:
    return Queue(name, connection=redis)


def _alert_on_detractor(runtime: Runtime, event: AnswerGiven) -> None:
    queue_detractor_alert(runtime, event.request_id, event.kind, event.value)


PROCESS_WIRING = Wiring(
    queue_factory=rq_queue,
    answer_listeners=(_alert_on_detractor,),
    text_opener=start_text_survey,
)


def runtime_from_settings(settings: Settings) -> Runtime:
    """The Runtime of an aftercall process."""
    return Runtime.from_settings(settings, PROCESS_WIRING)
