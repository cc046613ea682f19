"""Periodic dialer work for `rq cron` (see Procfile): no home-made scheduling loop.

Reconciliation re-queues every scheduled request whose job Redis lost (a restart without
persistence, an enqueue that failed after intake committed); it is idempotent, so
running it every minute costs one query and a few EXISTS calls.
"""

from rq import cron

from aftercall.runtime import CALL_QUEUE
from dialer.jobs import reconcile

cron.register(reconcile, queue_name=CALL_QUEUE, interval=60)
