"""Options several `inferops` commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings YAML (see README: Configuration).",
        envvar="INFEROPS_CONFIG",
    ),
]
