"""Fixtures every test package may use: a throwaway PostgreSQL cluster (the one launcher the
store benchmark uses too, in bench/_postgres.py). Also puts tests/ on sys.path, so shared
support modules such as `real_prometheus` import from any test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench._postgres import temporary_postgres


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh PostgreSQL cluster for this module, stopped after it."""
    with temporary_postgres() as url:
        if url is None:
            pytest.skip(
                "PostgreSQL is not installed (Debian package 'postgresql'),"
                " or runs as root with no 'postgres' user"
            )
        yield url
