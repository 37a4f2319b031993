"""One SQLAlchemy engine for everything InferOps stores: samples, alerts, decisions.

SQLite (the default) is opened so that several processes can share the file: the control
plane writes while the dashboard and the CLI read. WAL lets readers run beside the one
writer, `synchronous=NORMAL` is safe with WAL (a power cut may lose the last commits, never
corrupt the file), and a busy timeout makes a writer wait for another's lock instead of
failing at once. PostgreSQL is used by URL (`postgresql+psycopg://user:pass@host/db`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import QueuePool, StaticPool

from ._exceptions import StoreError

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's lock before failing."""

_SUPPORTED = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB"


def redact(url: str | URL) -> str:
    """The URL with its password replaced by ***, safe to log and to put in errors."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except Exception:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def open_database(url: str) -> sa.Engine:
    """An engine for `url`, checked by one connection.

    `sqlite:///relative/or/absolute/path.db` creates the file's directory; `sqlite://` or
    `sqlite:///:memory:` is a private in-memory database (one connection shared by every
    thread; for tests). `postgresql://` means `postgresql+psycopg://`. A URL of another kind,
    one that cannot be parsed, or a database that cannot be reached raises `StoreError`,
    whose message shows the URL without its password.
    """
    try:
        parsed = make_url(url)
    except Exception as error:  # ArgumentError, ValueError
        raise StoreError(
            f"not a database URL: {redact(url)} ({error}); expected {_SUPPORTED}"
        ) from None
    shown = redact(parsed)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed, shown)
    elif backend == "postgresql":
        if parsed.get_driver_name() in ("psycopg2", ""):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() != "psycopg":
            raise StoreError(
                f"unsupported PostgreSQL driver in {shown}: use postgresql+psycopg://"
            )
        engine = _create(parsed, shown, pool_pre_ping=True)
    else:
        raise StoreError(f"unsupported database URL {shown}: expected {_SUPPORTED}")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as error:
        engine.dispose()
        raise StoreError(f"cannot open database {shown}: {database_error_reason(error)}") from None
    return engine


def _create(url: URL, shown: str, **kwargs: Any) -> sa.Engine:
    try:
        return sa.create_engine(url, **kwargs)
    except Exception as error:
        raise StoreError(f"cannot open database {shown}: {database_error_reason(error)}") from None


def _sqlite_engine(url: URL, shown: str) -> sa.Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    connect_args: dict[str, Any] = {
        "check_same_thread": False,
        "timeout": SQLITE_BUSY_TIMEOUT_S,
    }
    if in_memory:
        engine = _create(url, shown, poolclass=StaticPool, connect_args=connect_args)
    else:
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the directory of {shown}: {error.strerror or error}"
            ) from None
        engine = _create(
            url,
            shown,
            poolclass=QueuePool,
            pool_size=8,
            max_overflow=16,
            pool_timeout=SQLITE_BUSY_TIMEOUT_S,
            connect_args=connect_args,
        )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    return engine


def database_error_reason(error: BaseException) -> str:
    """A driver's message without SQLAlchemy's trailer (background link, SQL echo)."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__
