"""The sample store as it was before migrations: series, raw samples, the write log.

Revision ID: 0001
Revises:
A database created by `SampleStore` before Alembic has exactly these tables; it is
stamped with this revision and upgraded from here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.UniqueConstraint("fingerprint", name="uq_metric_series_fingerprint"),
    )
    op.create_index("ix_metric_series_name", "metric_series", ["name"])
    op.create_table(
        "metric_samples",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("timestamp_s", sa.Double, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("stale", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "timestamp_s", name="pk_metric_samples"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "metric_writes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("min_timestamp_s", sa.Double, nullable=False),
        sa.Column("max_timestamp_s", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metric_writes")
    op.drop_table("metric_samples")
    op.drop_index("ix_metric_series_name", "metric_series")
    op.drop_table("metric_series")
