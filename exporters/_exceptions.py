"""The exporters package's exception tree."""

from __future__ import annotations


class ExporterError(Exception):
    """Base class of every error the exporters package raises on purpose."""


class GpuBackendUnavailable(ExporterError):
    """The requested GPU backend cannot run on this machine (no driver, no GPU, no library).

    `reason` is the short cause ("libnvidia-ml.so.1 not found: no NVIDIA driver/GPU"), for a
    caller that words its own message (select_gpu_backend's `auto` log line); str(error) is the
    full, actionable message.
    """

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class ExporterConfigError(ExporterError, ValueError):
    """A bad choice (unknown backend kind, unknown GPU type); the message names the choices.

    A ValueError too, so callers that validate input with `except ValueError` catch it.
    """
