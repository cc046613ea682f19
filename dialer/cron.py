"""Periodic dialer work for `rq cron` (see Procfile): no home-made scheduling loop.

Reconciliation (dialer.scheduling.reconcile) rebuilds from the database what Redis lost
or a dead process left behind: call jobs and follow-ups that are gone, failed or
orphaned, due jobs no rq scheduler released, and attempts whose final status callback
never came (asked of Twilio's Calls API, dialer.settlement). It is idempotent, so
running it every minute costs a few queries, a few Redis lookups per scheduled
request, and a Twilio lookup per overdue attempt.
"""

from rq import cron

from aftercall.runtime import CALL_QUEUE
from dialer.jobs import reconcile

cron.register(reconcile, queue_name=CALL_QUEUE, interval=60)
