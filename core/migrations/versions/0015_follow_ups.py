"""follow-ups: every answer set a survey's rule flags, owned until it is done

A follow-up per flagged request (scoring.follow_ups) with its owner, status, due time,
notes and history of changes; the teams a dashboard user leads (a supervisor sees their
teams' follow-ups); and API key scopes with `follow-ups`, for a CRM that mirrors them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copied, not imported: a migration must keep meaning what it meant when it was written.
SCOPE_SETS_BEFORE = ("intake", "reports", "reports:full", "intake reports", "intake reports:full")
SCOPE_SETS_AFTER = (
    *SCOPE_SETS_BEFORE,
    "follow-ups",
    "intake follow-ups",
    "reports follow-ups",
    "reports:full follow-ups",
    "intake reports follow-ups",
    "intake reports:full follow-ups",
)
STATUSES = ("new", "contacted", "resolved", "wont_fix")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("survey_name", sa.String(length=100), nullable=False),
        sa.Column("agent", sa.String(length=200), nullable=True),
        sa.Column("queue", sa.String(length=200), nullable=True),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("is_test", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="new", nullable=False),
        _time("opened_at"),
        _time("due_at"),
        _time("first_contacted_at", nullable=True),
        _time("closed_at", nullable=True),
        _time("changed_at"),
        sa.Column("changed_by", sa.String(length=120), nullable=False),
        sa.CheckConstraint(_in("status", STATUSES), name=op.f("ck_follow_ups_status")),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["survey_requests.id"],
            name=op.f("fk_follow_ups_request_id_survey_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
        sa.UniqueConstraint("request_id", name=op.f("uq_follow_ups_request_id")),
    )
    op.create_index("ix_follow_ups_open_due", "follow_ups", ["status", "due_at"])
    op.create_index("ix_follow_ups_team_status", "follow_ups", ["team", "status", "due_at"])
    op.create_index("ix_follow_ups_owner_status", "follow_ups", ["owner", "status", "due_at"])
    op.create_index("ix_follow_ups_opened", "follow_ups", ["opened_at"])
    op.create_table(
        "follow_up_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follow_up_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["follow_up_id"],
            ["follow_ups.id"],
            name=op.f("fk_follow_up_notes_follow_up_id_follow_ups"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_notes")),
    )
    op.create_index(op.f("ix_follow_up_notes_follow_up_id"), "follow_up_notes", ["follow_up_id"])
    op.create_table(
        "follow_up_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follow_up_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("old_value", sa.String(length=200), nullable=True),
        sa.Column("new_value", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        _time("changed_at"),
        _time("recorded_at"),
        sa.Column("applied", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.ForeignKeyConstraint(
            ["follow_up_id"],
            ["follow_ups.id"],
            name=op.f("fk_follow_up_changes_follow_up_id_follow_ups"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_changes")),
    )
    op.create_index(
        op.f("ix_follow_up_changes_follow_up_id"), "follow_up_changes", ["follow_up_id"]
    )
    op.create_table(
        "user_teams",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_teams_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "team", name=op.f("pk_user_teams")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_api_keys_scopes"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_api_keys_scopes"), _in("scopes", SCOPE_SETS_AFTER)
        )


def downgrade() -> None:
    # A key that may follow up keeps its other scopes; one that only followed up goes.
    op.execute("DELETE FROM api_keys WHERE scopes = 'follow-ups'")
    op.execute(
        "UPDATE api_keys SET scopes = REPLACE(scopes, ' follow-ups', '') "
        "WHERE scopes LIKE '% follow-ups'"
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_api_keys_scopes"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_api_keys_scopes"), _in("scopes", SCOPE_SETS_BEFORE)
        )
    op.drop_table("user_teams")
    op.drop_index(op.f("ix_follow_up_changes_follow_up_id"), table_name="follow_up_changes")
    op.drop_table("follow_up_changes")
    op.drop_index(op.f("ix_follow_up_notes_follow_up_id"), table_name="follow_up_notes")
    op.drop_table("follow_up_notes")
    op.drop_index("ix_follow_ups_opened", table_name="follow_ups")
    op.drop_index("ix_follow_ups_owner_status", table_name="follow_ups")
    op.drop_index("ix_follow_ups_team_status", table_name="follow_ups")
    op.drop_index("ix_follow_ups_open_due", table_name="follow_ups")
    op.drop_table("follow_ups")
