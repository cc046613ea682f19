"""Every periodic job, for `rq cron aftercall.cron` (the Procfile's cron process).

rq's cron scheduler takes one configuration module; this is it. The jobs themselves live
in their domains (dialer.jobs, scoring.jobs) and in aftercall.jobs; this module only
says when each runs, so no home-made scheduling loop exists anywhere.
"""

from rq import cron

from aftercall.jobs import purge_old_data
from dialer.jobs import expire_transfers, reconcile
from dialer.scheduling import CALL_QUEUE
from scoring.alerts import ALERT_QUEUE
from scoring.jobs import (
    compact_rollup,
    queue_alerts,
    send_follow_up_digests,
    sweep_follow_ups,
    tidy_rollup,
)
from sms.jobs import expire_conversations, resend_pending
from sms.outbox import MESSAGE_QUEUE

# rq's cron takes whole seconds (rq.cron.CronJob: the next run is the last one plus the
# interval), and its scheduler sleeps until the nearest job is due.
ALERT_DRAIN_SECONDS = 2

# Reconciliation (dialer.scheduling.reconcile) rebuilds from the database what Redis lost
# or a dead process left behind: call jobs and follow-ups that are gone, failed or
# orphaned, due jobs no rq scheduler released, and attempts whose final status callback
# never came (asked of Twilio's Calls API, dialer.settlement). It is idempotent, so
# running it every minute costs a few queries, a few Redis lookups per scheduled
# request, and a Twilio lookup per overdue attempt.
cron.register(reconcile, queue_name=CALL_QUEUE, interval=60)
# Detractor alerts owed (the answer webhooks write an outbox row, never to Redis) go on
# the alerts queue within ALERT_DRAIN_SECONDS of the answer, and within as long of Redis
# coming back after an outage. A run with nothing owed is one indexed SELECT; its job
# keeps no result, so 1,800 runs an hour leave nothing behind in Redis.
cron.register(queue_alerts, queue_name=ALERT_QUEUE, interval=ALERT_DRAIN_SECONDS, result_ttl=0)
# In-call requests whose customer was never transferred before the token's deadline.
cron.register(expire_transfers, queue_name=CALL_QUEUE, interval=60)
# Text conversations quiet for their survey's expire_hours close (partial or no reply);
# texts whose send job Redis lost are queued again.
cron.register(expire_conversations, queue_name=MESSAGE_QUEUE, interval=60)
cron.register(resend_pending, queue_name=MESSAGE_QUEUE, interval=60)
# Surveys that ended with answers their survey's rule flags get their follow-up.
cron.register(sweep_follow_ups, queue_name=CALL_QUEUE, interval=60)
# The triggers' deltas, folded into the daily rollup: reports read fewer rows.
cron.register(compact_rollup, queue_name=CALL_QUEUE, interval=60)
# Once a day, at a quiet hour (UTC): the rollup's rows back in day order.
cron.register(tidy_rollup, queue_name=CALL_QUEUE, cron="17 4 * * *")
# Once a day: personal data older than RETENTION_DAYS anonymised, recordings deleted.
cron.register(purge_old_data, queue_name=CALL_QUEUE, cron="47 3 * * *")
# Once a day, at 07:00 (the cron process's clock, UTC in the usual container): each
# owner's digest of overdue follow-ups queued on the alerts queue; change the hour here
# (docs/alerts.md).
cron.register(send_follow_up_digests, queue_name=CALL_QUEUE, cron="0 7 * * *")
