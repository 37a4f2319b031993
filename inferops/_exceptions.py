"""The wiring package's exception tree, written once."""

from __future__ import annotations


class InferOpsError(Exception):
    """Base of every error the `inferops` command reports to a user."""


class ConfigError(InferOpsError):
    """A settings file or value is wrong; the message names the file, line and field."""


class DemoError(InferOpsError):
    """The demo could not set up or close its loop."""
