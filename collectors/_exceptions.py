"""The collectors package's exception tree, written once."""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error the collectors package raises."""


class ExpositionError(CollectorError):
    """A /metrics body that cannot be read; the message names the line and what is wrong."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class StoreError(CollectorError):
    """The sample store could not be opened, written or read."""


class QueryError(CollectorError):
    """A PromQL expression that is invalid, unsupported, or that its source refused."""


class DiscoveryError(CollectorError):
    """A service-discovery file that cannot be used; the message names the file and why."""
