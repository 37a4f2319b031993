"""Fixtures of the alerting tests: a real SQLite database, a scripted metric source, a
recording notifier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alerting_doubles import RecordingNotifier, ScriptedSource

from alerting import AlertStore


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'inferops.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def store(database: sa.Engine) -> AlertStore:
    return AlertStore(database)


@pytest.fixture
def source() -> ScriptedSource:
    return ScriptedSource()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()
