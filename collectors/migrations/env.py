"""Alembic's environment for the sample store: always online, on the caller's connection.

`collectors._migrations.upgrade_store_schema` passes the connection (already holding the
database's migration lock) in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context

from collectors._store_schema import metadata

VERSION_TABLE = "inferops_sample_store_version"


def _run() -> None:
    if context.is_offline_mode():
        raise RuntimeError("the sample store's migrations run online only")
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
