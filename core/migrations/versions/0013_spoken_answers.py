"""spoken answers: how each answer was given, and the recogniser's confidence

A customer may say a scale answer instead of pressing keys (ivr.speech). The answer
keeps `input` ("keys" or "speech"), the transcript in the existing `transcript` column,
and `confidence`. Answers stored before were all keyed; they keep `input` unset.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("confidence", sa.Float(), nullable=True))
    # No backfill: an answer without `input` was stored before speech, so keyed (the
    # model says so), and rewriting every answer would hold the table's lock meanwhile.


def downgrade() -> None:
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_column("confidence")
        batch_op.drop_column("input")
