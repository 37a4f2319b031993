"""Schema migrations of the sample store, with Alembic (`collectors/migrations`).

`SampleStore` calls `upgrade_store_schema` when it opens a database: a new database gets
every revision, an older one the revisions it lacks, and a database created before
migrations existed (the tables of revision 0001 without a version table) is stamped 0001
first, so its data stays where it is. The version is kept in its own table,
`inferops_sample_store_version`, so that the store can share a PostgreSQL database with an
application that has its own `alembic_version`.

Several processes may open the same database at once (the control plane, the dashboard,
the CLI): the upgrade runs under the database's write lock (SQLite `BEGIN IMMEDIATE`, a
PostgreSQL transaction-level advisory lock), in one transaction, so one of them migrates
and the others find the schema at head. A database already at head costs one query.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ._database import database_error_reason
from ._exceptions import StoreError

__all__ = ["BASELINE_REVISION", "VERSION_TABLE", "head_revision", "upgrade_store_schema"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "inferops_sample_store_version"
BASELINE_REVISION = "0001"
"""The schema `SampleStore` created before migrations: stamped, never re-created."""
_PRE_MIGRATION_TABLE = "metric_series"
_POSTGRES_LOCK_KEY = 0x1F0_5A3E
"""pg_advisory_xact_lock key that serializes migrations of one database."""


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest schema revision this version of InferOps knows."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """The database's schema revision; None when it has no version table."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade_store_schema(engine: sa.Engine) -> str:
    """Bring the sample store's schema to head; the revision it is at afterwards.

    Raises `StoreError` when the database cannot be migrated, or was written by a newer
    InferOps (a revision this one does not know).
    """
    head = head_revision()
    try:
        with engine.connect() as connection:
            if current_revision(connection) == head:
                return head
        with engine.connect() as connection:
            _lock(connection)
            current = current_revision(connection)
            if current is not None and current != head:
                _check_known(current, head)
            if current is None and sa.inspect(connection).has_table(_PRE_MIGRATION_TABLE):
                command.stamp(_config(connection), BASELINE_REVISION)
                current = BASELINE_REVISION
            if current != head:
                command.upgrade(_config(connection), "head")
            connection.commit()
    except StoreError:
        raise
    except Exception as error:
        reason = database_error_reason(error)
        raise StoreError(f"cannot migrate the sample store's schema: {reason}") from None
    return head


def _lock(connection: sa.Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK_KEY}
        )


def _check_known(revision: str, head: str) -> None:
    try:
        _scripts().get_revision(revision)
    except Exception:
        raise StoreError(
            f"the sample store's schema is at revision {revision!r}, which this InferOps does "
            f"not know (its newest is {head!r}): it was written by a newer version"
        ) from None
