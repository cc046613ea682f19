"""Every periodic job, for `rq cron aftercall.cron` (the Procfile's cron process).

rq's cron scheduler takes one configuration module; this is it. Each part of aftercall
registers its own jobs in its own module, imported here.
"""

from rq import cron

import dialer.cron  # noqa: F401  (reconciliation, every minute)
from aftercall.jobs import purge_old_data
from aftercall.runtime import CALL_QUEUE
from scoring.jobs import compact_rollup, tidy_rollup

# The triggers' deltas, folded into the daily rollup: reports read fewer rows.
cron.register(compact_rollup, queue_name=CALL_QUEUE, interval=60)
# Once a day, at a quiet hour (UTC): the rollup's rows back in day order.
cron.register(tidy_rollup, queue_name=CALL_QUEUE, cron="17 4 * * *")
# Once a day: personal data older than RETENTION_DAYS anonymised, recordings deleted.
cron.register(purge_old_data, queue_name=CALL_QUEUE, cron="47 3 * * *")
