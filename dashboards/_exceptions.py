"""The dashboards package's errors, written once."""

from __future__ import annotations


class DashboardError(Exception):
    """Base of every error the dashboards package raises."""


class DashboardArgumentError(DashboardError, ValueError):
    """An argument that cannot work; the message names it and the value given."""


class TimeRangeError(DashboardArgumentError):
    """A chart time range that cannot be queried: end before start, a step of zero, ..."""


class ControlPlaneError(DashboardError):
    """The control-plane API refused or could not be reached; the message says which and
    carries the API's own error text; `status_code` is None when it did not answer."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
