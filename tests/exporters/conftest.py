from __future__ import annotations

import pytest
from exporters_doubles import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
