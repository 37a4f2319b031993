"""The write-optimized head of raw samples, and OpenMetrics exemplars.

Revision ID: 0003
Revises: 0002

- `metric_samples_head(series_id, timestamp_s, value, stale)`: new raw samples land here
  first (on SQLite), in arrival order, and are merged into `metric_samples` in bulk; see
  `collectors._store_head`.
- `metric_exemplars(series_id, timestamp_s, value, labels)`: exemplars of scraped samples.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "metric_samples_head",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("timestamp_s", sa.Double, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("stale", sa.Boolean, nullable=False),
    )
    op.create_table(
        "metric_exemplars",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("timestamp_s", sa.Double, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("labels", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "timestamp_s", name="pk_metric_exemplars"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("metric_exemplars")
    op.drop_table("metric_samples_head")
