"""Fixtures of the remediation tests: a real SQLite database, a clock the test sets, an
in-memory fleet behind the `FleetDriver` seam, and a stand-in router over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from remediation_doubles import InMemoryFleet, SetClock, StandInRouter, serve_stand_in_router

from remediation import DecisionLog


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'inferops.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def log(database: sa.Engine) -> DecisionLog:
    return DecisionLog(database)


@pytest.fixture
def clock() -> SetClock:
    return SetClock(1000.0)


@pytest.fixture
def fleet() -> InMemoryFleet:
    """Three serving, healthy nodes: node-0, node-1, node-2."""
    return InMemoryFleet()


@pytest.fixture
def router() -> Iterator[StandInRouter]:
    """The stand-in router on a free port of 127.0.0.1, stopped at the end of the test."""
    yield from serve_stand_in_router()
