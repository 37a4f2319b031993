"""The order nodes are listed in, everywhere on the page."""

from __future__ import annotations

import re


def natural_sort_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """`node-2` before `node-10`."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)
    )
