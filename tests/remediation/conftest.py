"""Fixtures of the remediation tests: a real SQLite database and a clock the test sets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from remediation import DecisionLog


class SetClock:
    """A clock that reads what the test last set; cooldowns are tested without waiting."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


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
