"""roles for dashboard users, scopes for API keys

Users get one of three roles, checked by the database: admin, supervisor (full phone
numbers and recordings) and analyst (masked numbers, no recordings). Every user that
exists keeps what they saw before: supervisors and admins stay so, and any other value
(only hand-written SQL could have made one) becomes supervisor, the role that sees what
every user saw until now.

API keys get scopes: intake, reports (masked numbers) or reports:full. Every existing
key could do everything, so each gets `intake reports:full` and keeps working; operators
narrow them with `aftercall apikey set-scope`. New keys get only what they are created
with.

Downgrading drops the scopes (the old code lets every key do everything) and the role
check; analysts stay analysts, which the old code shows everything to.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copied, not imported: a migration must keep meaning what it meant when it was written.
ROLES = ("admin", "supervisor", "analyst")
SCOPE_SETS = ("intake", "reports", "reports:full", "intake reports", "intake reports:full")
EXISTING_KEYS_SCOPES = "intake reports:full"


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    # Analysts are here only after a downgrade and upgrade again: they stay analysts.
    op.execute(f"UPDATE users SET role = 'supervisor' WHERE NOT ({_in('role', ROLES)})")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_check_constraint(op.f("ck_users_role"), _in("role", ROLES))

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes", sa.String(length=64), nullable=True))
    op.execute(sa.text("UPDATE api_keys SET scopes = :scopes").bindparams(
        scopes=EXISTING_KEYS_SCOPES
    ))  # fmt: skip
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column("scopes", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_check_constraint(op.f("ck_api_keys_scopes"), _in("scopes", SCOPE_SETS))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_api_keys_scopes"), type_="check")
        batch_op.drop_column("scopes")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
