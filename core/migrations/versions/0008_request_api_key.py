"""the API key that sent each survey request

An intake key may read back only the requests it sent (GET /api/v1/survey-requests/<id>
carries the customer's number, answers and recording). Requests stored before this
revision have no key: no intake key can read them (the CLI's `customer export` can).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("survey_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_survey_requests_api_key_id_api_keys"), "api_keys", ["api_key_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("survey_requests", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_survey_requests_api_key_id_api_keys"), type_="foreignkey"
        )
        batch_op.drop_column("api_key_id")
