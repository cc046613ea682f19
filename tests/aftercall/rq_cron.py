"""The `rq cron` configuration of tests/aftercall/rq_processes.cron: one harmless job, on
a queue of its own, so a test sees a live cron process and a queue beyond aftercall's."""

from rq import cron

from tests.aftercall.rq_processes import nothing

cron.register(nothing, queue_name="upkeep", interval=3600)
