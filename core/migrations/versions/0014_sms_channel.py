"""the SMS channel: conversations and texts, the request's channel, text answers

A survey may go out by text (sms/), directly or as the fallback after unanswered calls.
Requests get a `channel` (voice, sms, sms_fallback) and two states: `texting` (the
first text went out) and `no_reply` (expired without a reply). A conversation holds
which question the next reply answers; every text either way is kept in sms_messages.
An answer is given in a call attempt or in a conversation, so `attempt_id` may be
empty when `conversation_id` is not, and a typed comment is an answer with only a
transcript. New answers copy the channel, as they copy the other report fields.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As core.models.RequestState, frozen here as this revision wrote it.
STATES_BEFORE = (
    "pending", "scheduled", "calling", "in_progress", "completed", "partial", "abandoned",
    "opted_out", "no_answer", "busy", "voicemail", "failed", "expired", "canceled",
    "suppressed", "awaiting_transfer",
)  # fmt: skip
STATES_AFTER = (*STATES_BEFORE, "texting", "no_reply")
CHANNELS = ("voice", "sms", "sms_fallback")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    op.create_table(
        "sms_conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("sender", sa.String(length=20), nullable=False),
        sa.Column("survey_version_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("question_key", sa.String(length=64), nullable=True),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["survey_requests.id"],
            name=op.f("fk_sms_conversations_request_id_survey_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["survey_version_id"],
            ["survey_versions.id"],
            name=op.f("fk_sms_conversations_survey_version_id_survey_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_conversations")),
        sa.UniqueConstraint("request_id", name=op.f("uq_sms_conversations_request_id")),
    )
    op.create_index("ix_sms_conversations_phone_open", "sms_conversations", ["phone", "closed_at"])
    op.create_index("ix_sms_conversations_expires", "sms_conversations", ["expires_at"])
    op.create_table(
        "sms_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("question_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "direction IN ('outbound', 'inbound')", name=op.f("ck_sms_messages_direction")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["sms_conversations.id"],
            name=op.f("fk_sms_messages_conversation_id_sms_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_messages")),
        sa.UniqueConstraint("message_sid", name=op.f("uq_sms_messages_message_sid")),
    )
    op.create_index(op.f("ix_sms_messages_conversation_id"), "sms_messages", ["conversation_id"])
    op.create_index("ix_sms_messages_phone_created", "sms_messages", ["phone", "created_at"])

    with op.batch_alter_table("survey_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=32), server_default="voice", nullable=False)
        )
        batch_op.create_check_constraint("channel", _in("channel", CHANNELS))
        batch_op.drop_constraint(op.f("ck_survey_requests_request_state"), type_="check")
        batch_op.create_check_constraint("request_state", _in("state", STATES_AFTER))
    # No backfill of answers' channel: a missing one is voice, what every answer before
    # this revision was (reports read it so), and rewriting them would hold the lock.
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("conversation_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_answers_conversation_id_sms_conversations"),
            "sms_conversations",
            ["conversation_id"],
            ["id"],
        )
        batch_op.create_index(op.f("ix_answers_conversation_id"), ["conversation_id"])
        batch_op.alter_column("attempt_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint(
            "attempt_or_conversation", "attempt_id IS NOT NULL OR conversation_id IS NOT NULL"
        )
        batch_op.drop_constraint(op.f("ck_answers_value_or_recording"), type_="check")
        batch_op.create_check_constraint(
            "value_or_recording",
            "value IS NOT NULL OR recording_url IS NOT NULL OR transcript IS NOT NULL",
        )


def downgrade() -> None:
    # Text answers have no attempt: they go, with the conversations they belong to.
    op.execute("DELETE FROM answers WHERE attempt_id IS NULL")
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_answers_value_or_recording"), type_="check")
        batch_op.create_check_constraint(
            "value_or_recording", "value IS NOT NULL OR recording_url IS NOT NULL"
        )
        batch_op.drop_constraint(op.f("ck_answers_attempt_or_conversation"), type_="check")
        batch_op.alter_column("attempt_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index(op.f("ix_answers_conversation_id"))
        batch_op.drop_constraint(
            op.f("fk_answers_conversation_id_sms_conversations"), type_="foreignkey"
        )
        batch_op.drop_column("conversation_id")
        batch_op.drop_column("channel")
    # Requests still to be texted would be called by the release before this one (it
    # knows no channel): they expire instead.
    op.execute(
        "UPDATE survey_requests SET state = 'expired' "
        "WHERE channel <> 'voice' AND state IN ('scheduled', 'pending')"
    )
    op.execute("UPDATE survey_requests SET state = 'expired' WHERE state = 'texting'")
    op.execute("UPDATE survey_requests SET state = 'expired' WHERE state = 'no_reply'")
    with op.batch_alter_table("survey_requests", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_survey_requests_request_state"), type_="check")
        batch_op.create_check_constraint("request_state", _in("state", STATES_BEFORE))
        batch_op.drop_constraint(op.f("ck_survey_requests_channel"), type_="check")
        batch_op.drop_column("channel")
    op.drop_index("ix_sms_messages_phone_created", table_name="sms_messages")
    op.drop_index(op.f("ix_sms_messages_conversation_id"), table_name="sms_messages")
    op.drop_table("sms_messages")
    op.drop_index("ix_sms_conversations_expires", table_name="sms_conversations")
    op.drop_index("ix_sms_conversations_phone_open", table_name="sms_conversations")
    op.drop_table("sms_conversations")
