"""a partial index of the calls not yet over

Every placement counts the calls in flight (MAX_CONCURRENT_CALLS) while it holds the
placement lock, and settlement looks for in-flight calls whose final status never came.
Without an index both read the whole call_attempts table: 0.2-0.3 s at a million
attempts, inside the lock every worker waits on (found by bench.dialer_throughput). The
calls in flight are a handful of rows; a partial index holds only them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As core.models.IN_FLIGHT_STATUSES, frozen here as this revision wrote it.
IN_FLIGHT = "status IN ('queued', 'initiated', 'ringing', 'in-progress')"


def upgrade() -> None:
    op.create_index(
        "ix_call_attempts_in_flight",
        "call_attempts",
        ["created_at"],
        postgresql_where=sa.text(IN_FLIGHT),
        sqlite_where=sa.text(IN_FLIGHT),
    )


def downgrade() -> None:
    op.drop_index("ix_call_attempts_in_flight", table_name="call_attempts")
