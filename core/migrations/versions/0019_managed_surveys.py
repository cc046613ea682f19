"""managed surveys: surveys kept in the database, and the history of their changes

Until now every survey was a TOML file in SURVEYS_DIR. From this revision admins may
also keep surveys in the database (core.survey_store): `managed_surveys` holds each
one's current version (a `survey_versions` row, frozen like a file's) and the revision
that optimistic concurrency compares; `survey_changes` keeps who changed what and when,
one row per revision. Requests and answers still point at versions only.

Downgrade drops both tables: the versions they pointed at stay, and so do the requests
and answers that used them, but the surveys themselves are no longer offered (export
them first with `aftercall surveys export`).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copied, not imported: a migration must keep meaning what it meant when it was written.
ACTIONS = ("created", "copied", "edited", "retired", "restored", "imported")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "managed_surveys",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("current_version_id", sa.Integer(), nullable=False),
        _time("retired_at", nullable=True),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        _time("updated_at"),
        sa.CheckConstraint("revision >= 1", name=op.f("ck_managed_surveys_revision_positive")),
        sa.ForeignKeyConstraint(
            ["current_version_id"],
            ["survey_versions.id"],
            name=op.f("fk_managed_surveys_current_version_id_survey_versions"),
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_managed_surveys")),
    )
    op.create_table(
        "survey_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_name", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changed_by", sa.String(length=120), nullable=False),
        _time("changed_at"),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.CheckConstraint(
            "action IN (" + ", ".join(f"'{a}'" for a in ACTIONS) + ")",
            name=op.f("ck_survey_changes_action"),
        ),
        sa.CheckConstraint("revision >= 1", name=op.f("ck_survey_changes_revision_positive")),
        sa.ForeignKeyConstraint(
            ["survey_name"],
            ["managed_surveys.name"],
            name=op.f("fk_survey_changes_survey_name_managed_surveys"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["survey_versions.id"],
            name=op.f("fk_survey_changes_version_id_survey_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_changes")),
        sa.UniqueConstraint("survey_name", "revision", name=op.f("uq_survey_changes_survey_name")),
    )


def downgrade() -> None:
    op.drop_table("survey_changes")
    op.drop_table("managed_surveys")
