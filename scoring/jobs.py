"""The rq jobs of scoring/: build the worker's Runtime, call the domain, return a note."""

from __future__ import annotations

from core.runtime import worker_runtime
from scoring import alerts, follow_up_digest, follow_ups, rollup


def compact_rollup() -> int:
    """Fold the report rollup's pending deltas (a no-op where there is no rollup)."""
    with worker_runtime().db.session() as session:
        return rollup.compact(session)


def tidy_rollup() -> bool:
    """Put the report rollup's rows back in day order (a no-op without a rollup)."""
    with worker_runtime().db.session() as session:
        return rollup.tidy(session)


def sweep_follow_ups() -> int:
    """Open the follow-ups of surveys that ended lately (scoring.follow_ups.sweep)."""
    return follow_ups.sweep(worker_runtime())


def send_follow_up_digests() -> str:
    """Queue today's digests of overdue follow-ups, one per owner and one for the
    unassigned (scoring.follow_up_digest.send_digests); safe to run twice a day."""
    return follow_up_digest.send_digests(worker_runtime())


def queue_alerts() -> int:
    """Queue the detractor alerts the answer webhooks left in the outbox
    (scoring.alerts.queue_due_alerts); the cron runs it every few seconds."""
    return alerts.queue_due_alerts(worker_runtime())
