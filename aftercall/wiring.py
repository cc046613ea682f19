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
from core.runtime import Runtime, Wiring
from scoring.alerts import alert_wanted
from sms.sender import start as start_text_survey


def rq_queue(name: str, redis: Redis) -> Queue:
    return Queue(name, connection=redis)


# A detractor's answer owes an alert: its outbox row is written with the answer, and
# the worker's drain (scoring.jobs.queue_alerts, on aftercall.cron) queues it.
PROCESS_WIRING = Wiring(
    queue_factory=rq_queue,
    alert_rule=alert_wanted,
    text_opener=start_text_survey,
)


def runtime_from_settings(settings: Settings) -> Runtime:
    """The Runtime of an aftercall process."""
    return Runtime.from_settings(settings, PROCESS_WIRING)
