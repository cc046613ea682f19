"""alert outbox: a detractor alert owed, written with the answer that called for it

One row per survey request that owes a detractor alert, written in the answer's own
transaction (on PostgreSQL, its statement) instead of an rq enqueue after the commit;
the worker's drain queues the alert's job and notes when (scoring.alerts). An alert
therefore survives Redis being down when the answer comes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_QUEUED = "queued_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("queued_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["survey_requests.id"],
            name=op.f("fk_alert_outbox_request_id_survey_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_outbox")),
        sa.UniqueConstraint("request_id", name=op.f("uq_alert_outbox_request_id")),
    )
    op.create_index(
        "ix_alert_outbox_due",
        "alert_outbox",
        ["id"],
        postgresql_where=sa.text(NOT_QUEUED),
        sqlite_where=sa.text(NOT_QUEUED),
    )


def downgrade() -> None:
    # Alerts owed but not queued yet are lost with the table: the older release queued
    # them from the web process and has nothing that would read them.
    op.drop_index("ix_alert_outbox_due", table_name="alert_outbox")
    op.drop_table("alert_outbox")
