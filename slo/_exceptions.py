"""The slo package's errors, written once."""

from __future__ import annotations


class SloError(Exception):
    """Base of every error the slo package raises."""


class SloSpecError(SloError, ValueError):
    """An SLO spec, burn-rate windows file or rule file that cannot be used as written.

    Carries where the problem is (`filename`, 1-based `line`, `field` path) so the message
    reads `slos.yaml:7: slos[0].objective: must be between 0 and 1 (exclusive), got 1.5`.
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str = "",
        filename: str | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = reason
        self.field = field
        self.filename = filename
        self.line = line
        super().__init__(self._message())

    def _message(self) -> str:
        where = ""
        if self.filename is not None:
            where = self.filename if self.line is None else f"{self.filename}:{self.line}"
        parts = [part for part in (where, self.field, self.reason) if part]
        return ": ".join(parts)
