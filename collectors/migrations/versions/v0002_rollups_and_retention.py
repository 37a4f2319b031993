"""1-minute roll-ups and the raw/roll-up boundary, for retention and downsampling.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("minute_s", sa.Double, nullable=False),
        sa.Column("timestamp_s", sa.Double, nullable=True),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("min_value", sa.Double, nullable=True),
        sa.Column("max_value", sa.Double, nullable=True),
        sa.Column("sum_value", sa.Double, nullable=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("stale_timestamp_s", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("series_id", "minute_s", name="pk_metric_rollups"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "metric_retention",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("raw_from_s", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metric_retention")
    op.drop_table("metric_rollups")
