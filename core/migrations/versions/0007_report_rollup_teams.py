"""the report rollup without agents, for contact-center-wide figures

report_daily_teams holds report_daily's counts summed over agents; scoring.rollup
rewrites it from report_daily for every day compaction touches. Filled here from
report_daily where the rollup is on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0005, frozen.
COUNTERS = (
    *(f"nps_{v}" for v in range(0, 11)),
    *(f"csat_{v}" for v in range(1, 6)),
    *(f"ces_{v}" for v in range(1, 8)),
    "received", "placed", "calls_placed", "answered", "reached", "completed", "partial",
    "opted_out", "attempts_for_completed",
    *(f"suppressed_{reason}" for reason in ("not_sampled", "opted_out", "surveyed_recently",
      "survey_under_way", "call_cap_reached", "no_calling_window", "validity_expired")),
)  # fmt: skip
KEYS = ("day", "queue", "team", "survey_name", "language")


def upgrade() -> None:
    op.create_table(
        "report_daily_teams",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=True),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("survey_name", sa.String(length=100), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in COUNTERS),
    )
    op.create_index("ix_report_daily_teams_day", "report_daily_teams", ["day"], unique=False)
    keys, counters = ", ".join(KEYS), ", ".join(COUNTERS)
    sums = ", ".join(f"sum({name})" for name in COUNTERS)
    op.execute(
        f"INSERT INTO report_daily_teams ({keys}, {counters})"
        f" SELECT {keys}, {sums} FROM report_daily GROUP BY {keys} ORDER BY day"
    )


def downgrade() -> None:
    op.drop_index("ix_report_daily_teams_day", table_name="report_daily_teams")
    op.drop_table("report_daily_teams")
