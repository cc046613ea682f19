"""report fields on answers and placed calls on requests

Reports over millions of answers read one table: each answer carries its request's call
end time, agent, queue, team, survey and language (they never change), and each request
its count of placed calls, instead of joining and counting at report time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:23:32.927973
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("call_ended_at", core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("agent", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("queue", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("team", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("survey_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
        batch_op.create_index(
            "ix_answers_report", ["call_ended_at", "agent", "kind", "value"], unique=False
        )

    with op.batch_alter_table("survey_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("calls_placed", sa.Integer(), server_default="0", nullable=False)
        )

    # Existing rows: copy the request's fields onto its answers, count placed calls.
    for field in ("call_ended_at", "agent", "queue", "team", "survey_name", "language"):
        source = "call_ended_at" if field == "call_ended_at" else field
        op.execute(
            f"UPDATE answers SET {field} = (SELECT r.{source} FROM survey_requests r"
            " WHERE r.id = answers.request_id)"
        )
    op.execute(
        "UPDATE survey_requests SET calls_placed = (SELECT count(*) FROM call_attempts a"
        " WHERE a.request_id = survey_requests.id AND a.status <> 'rejected')"
    )


def downgrade() -> None:
    with op.batch_alter_table("survey_requests", schema=None) as batch_op:
        batch_op.drop_column("calls_placed")

    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_index("ix_answers_report")
        batch_op.drop_column("language")
        batch_op.drop_column("survey_name")
        batch_op.drop_column("team")
        batch_op.drop_column("queue")
        batch_op.drop_column("agent")
        batch_op.drop_column("call_ended_at")
