"""contact_legs: the legs of a customer's conversation, until its last one is known

Amazon Connect writes a contact record per leg of a transferred call (and for consults
and conferences), Twilio Flex a reservation per agent of a task, delivered at least once,
in any order. aftercall keeps each leg until
the conversation's legs are all in, then makes one survey request of it, rating the last
agent (dialer.receivers.conversations).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 03:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_legs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("conversation_id", sa.String(length=256), nullable=False),
        sa.Column("leg_id", sa.String(length=256), nullable=False),
        sa.Column("previous_leg_id", sa.String(length=256), nullable=True),
        sa.Column("next_leg_id", sa.String(length=256), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("initiation_method", sa.String(length=40), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("agent", sa.String(length=200), nullable=True),
        sa.Column("queue", sa.String(length=200), nullable=True),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("survey", sa.String(length=100), nullable=True),
        sa.Column("agent_connected_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("after_contact_work_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("transfer_completed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("is_end", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("call_metadata", sa.JSON(), nullable=False),
        sa.Column("received_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_legs")),
        sa.UniqueConstraint("platform", "leg_id", name="uq_contact_legs_leg"),
    )
    op.create_index("ix_contact_legs_conversation", "contact_legs", ["platform", "conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_legs_conversation", table_name="contact_legs")
    op.drop_table("contact_legs")
