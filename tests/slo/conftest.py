"""Fixtures of the slo tests: the real promtool, run on generated rule files."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

PromtoolRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def promtool(tmp_path: Path) -> PromtoolRun:
    """`promtool(*args)` run in tmp_path (where the test writes its files); 60 s at most."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus')")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )

    return run
