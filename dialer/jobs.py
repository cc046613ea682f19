"""The rq jobs of the call queue: module-level functions with plain arguments (ids).

They only build the worker's Runtime and call the domain (dialer.dispatch); what they
return is kept by rq as the job's result, a short note of what happened. Every job is
safe to run twice, because the database, not Redis, decides.
"""

from __future__ import annotations

from core.runtime import worker_runtime
from dialer import dispatch, in_call, scheduling


def place_due_call(request_id: int, attempt_number: int) -> str:
    return dispatch.dial(worker_runtime(), request_id, attempt_number)


def after_attempt(request_id: int) -> str:
    return dispatch.after_attempt(worker_runtime(), request_id)


def queue_first_calls(request_ids: list[int]) -> int:
    return scheduling.queue_first_calls(worker_runtime(), request_ids)


def reconcile() -> int:
    return scheduling.reconcile(worker_runtime())


def expire_transfers() -> int:
    return in_call.expire_unclaimed(worker_runtime())
