"""The rq jobs of aftercall's own housekeeping: build the Runtime, call the domain."""

from __future__ import annotations

from core.retention import purge_expired
from core.runtime import worker_runtime


def purge_old_data() -> str:
    """RETENTION_DAYS after their support call, anonymise requests (a no-op if unset)."""
    runtime = worker_runtime()
    days = runtime.settings.retention_days
    if days is None:
        return "RETENTION_DAYS is not set: nothing purged"
    twilio = runtime.twilio if runtime.settings.twilio_account_sid else None
    with runtime.db.session() as session:
        return purge_expired(session, twilio, runtime.now(), days)
