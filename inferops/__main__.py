"""`python -m inferops` runs the CLI (the demo starts its children this way)."""

from inferops.cli import main

main()
