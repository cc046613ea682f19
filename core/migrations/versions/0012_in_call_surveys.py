"""in-call surveys: the request's mode and attribution, inbound attempts

A customer transferred into the survey at the end of the support call (ivr.inbound)
makes an inbound attempt of an `in_call` request; intake's in-call requests wait in the
new `awaiting_transfer` state until the transfer arrives or `transfer_expires_at`
passes. New answers copy the mode, as they copy the other report fields.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As core.models.RequestState, frozen here as this revision wrote it.
STATES_BEFORE = (
    "pending", "scheduled", "calling", "in_progress", "completed", "partial", "abandoned",
    "opted_out", "no_answer", "busy", "voicemail", "failed", "expired", "canceled",
    "suppressed",
)  # fmt: skip
STATES_AFTER = (*STATES_BEFORE, "awaiting_transfer")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table("survey_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=32), server_default="callback", nullable=False)
        )
        batch_op.add_column(sa.Column("attribution", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("transfer_expires_at", core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_check_constraint("survey_mode", _in("mode", ("callback", "in_call")))
        batch_op.create_check_constraint(
            "attribution", _in("attribution", ("token", "number", "late_event", "none"))
        )
        batch_op.drop_constraint(op.f("ck_survey_requests_request_state"), type_="check")
        batch_op.create_check_constraint("request_state", _in("state", STATES_AFTER))
    # Requests waiting for a transfer: the caller's number is matched among few rows.
    op.create_index(
        "ix_survey_requests_awaiting_transfer",
        "survey_requests",
        ["phone", "transfer_expires_at"],
        postgresql_where=sa.text("transfer_expires_at IS NOT NULL"),
        sqlite_where=sa.text("transfer_expires_at IS NOT NULL"),
    )
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("direction", sa.String(length=16), server_default="outbound", nullable=False)
        )
        batch_op.create_check_constraint("direction", _in("direction", ("outbound", "inbound")))
    # No backfill: rewriting every answer would hold the table's lock (and fire the
    # rollup's triggers) for as long as that takes; reports read a missing mode as the
    # callback's, which is what every answer before this revision was.
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_column("mode")
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_call_attempts_direction"), type_="check")
        batch_op.drop_column("direction")
    op.drop_index("ix_survey_requests_awaiting_transfer", table_name="survey_requests")
    op.execute("UPDATE survey_requests SET state = 'expired' WHERE state = 'awaiting_transfer'")
    with op.batch_alter_table("survey_requests", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_survey_requests_request_state"), type_="check")
        batch_op.create_check_constraint("request_state", _in("state", STATES_BEFORE))
        batch_op.drop_constraint(op.f("ck_survey_requests_attribution"), type_="check")
        batch_op.drop_constraint(op.f("ck_survey_requests_survey_mode"), type_="check")
        batch_op.drop_column("transfer_expires_at")
        batch_op.drop_column("attribution")
        batch_op.drop_column("mode")
