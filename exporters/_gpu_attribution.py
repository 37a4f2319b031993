"""Which serving node and model a GPU process belongs to: workload attribution.

NVML tells which pids hold memory on a GPU; only the fleet knows what those pids serve.
A `ProcessAttribution` answers `owners()` (pid -> `ProcessOwner`) and the GPU collector
labels `inferops_gpu_process_memory_used_bytes` with it. Three sources:

- `StaticAttribution`: a fixed mapping (a node process attributing itself);
- `FileAttribution`: a JSON file, `{"4242": {"node": "node-0", "model_name": "m"}}`, read
  again when it changes (a deployment tool writes it);
- `RegistryAttribution`: the reference router's node registry (`GET /sd/targets`), whose
  groups carry `__meta_inferops_pid`, `node` and `model_name`, fetched in the background.

`owners()` never blocks on the network and never raises: a source that fails keeps its last
good mapping and logs why, so a broken attribution never costs a scrape.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import httpx

from ._exceptions import ExporterConfigError

__all__ = [
    "FileAttribution",
    "ProcessAttribution",
    "ProcessOwner",
    "RegistryAttribution",
    "StaticAttribution",
    "parse_attribution",
]

logger = logging.getLogger("exporters.attribution")

_EMPTY: Mapping[int, ProcessOwner] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ProcessOwner:
    """The serving node and model a GPU process belongs to."""

    node: str
    model_name: str


@runtime_checkable
class ProcessAttribution(Protocol):
    """pid -> owner; must be fast and must not raise (it runs on every sample)."""

    def owners(self) -> Mapping[int, ProcessOwner]: ...

    def close(self) -> None: ...


class StaticAttribution:
    """A fixed pid -> owner mapping."""

    def __init__(self, owners: Mapping[int, ProcessOwner]) -> None:
        self._owners: Mapping[int, ProcessOwner] = MappingProxyType(dict(owners))

    def owners(self) -> Mapping[int, ProcessOwner]:
        return self._owners

    def close(self) -> None:
        pass


def _pid(value: object, where: str) -> int:
    text = str(value)
    if not text.isdigit() or int(text) <= 0:
        raise ExporterConfigError(f"{where}: pid must be a positive integer, got {value!r}")
    return int(text)


def parse_attribution(text: str, *, source: str) -> dict[int, ProcessOwner]:
    """`{"<pid>": {"node": ..., "model_name": ...}}`; errors name the source, pid and field."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ExporterConfigError(
            f"{source}:{error.lineno}: not valid JSON: {error.msg}"
        ) from None
    if not isinstance(raw, dict):
        raise ExporterConfigError(
            f"{source}: expected an object of pid -> {{node, model_name}}, "
            f"got {type(raw).__name__}"
        )
    owners: dict[int, ProcessOwner] = {}
    for key, entry in raw.items():
        pid = _pid(key, source)
        if not isinstance(entry, dict):
            raise ExporterConfigError(f"{source}: {key}: expected {{node, model_name}}")
        values = []
        for name in ("node", "model_name"):
            value = entry.get(name)
            if not isinstance(value, str):
                raise ExporterConfigError(
                    f"{source}: {key}: {name} must be a string, got {value!r}"
                )
            values.append(value)
        owners[pid] = ProcessOwner(*values)
    return owners


class FileAttribution:
    """Owners from a JSON file, read again whenever its modification time or size changes.

    A file missing or malformed at construction raises `ExporterConfigError` (a typo in a
    command line should fail loudly); later, a bad version is logged and the last good
    mapping kept.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._owners: Mapping[int, ProcessOwner] = _EMPTY
        try:
            stat = self.path.stat()
            text = self.path.read_text(encoding="utf-8")
        except OSError as error:
            raise ExporterConfigError(
                f"{self.path}: cannot read the attribution file: {error.strerror}"
            ) from None
        self._owners = MappingProxyType(parse_attribution(text, source=str(self.path)))
        self._seen = (stat.st_mtime_ns, stat.st_size)

    def owners(self) -> Mapping[int, ProcessOwner]:
        with self._lock:
            try:
                stat = self.path.stat()
                seen = (stat.st_mtime_ns, stat.st_size)
                if seen != self._seen:
                    self._seen = seen
                    text = self.path.read_text(encoding="utf-8")
                    self._owners = MappingProxyType(
                        parse_attribution(text, source=str(self.path))
                    )
            except (OSError, UnicodeDecodeError, ExporterConfigError) as error:
                reason = error.strerror if isinstance(error, OSError) else str(error)
                logger.error("attribution file %s: %s; keeping the last good mapping (%d pids)",
                             self.path, reason, len(self._owners))
            return self._owners

    def close(self) -> None:
        pass


def owners_from_target_groups(groups: Any, *, source: str) -> dict[int, ProcessOwner]:
    """The node registry's http_sd groups -> pid -> owner (groups without a pid are skipped)."""
    if not isinstance(groups, list):
        raise ExporterConfigError(f"{source}: expected a list of target groups")
    owners: dict[int, ProcessOwner] = {}
    for index, group in enumerate(groups):
        labels = group.get("labels") if isinstance(group, dict) else None
        if not isinstance(labels, dict):
            raise ExporterConfigError(f"{source}[{index}]: a target group needs labels")
        pid = labels.get("__meta_inferops_pid")
        if pid is None:
            continue
        owners[_pid(pid, f"{source}[{index}]")] = ProcessOwner(
            str(labels.get("node", "")), str(labels.get("model_name", ""))
        )
    return owners


class RegistryAttribution:
    """Owners from the reference router's `GET /sd/targets`, fetched every
    `refresh_interval_s` by a daemon thread (once before the constructor returns)."""

    def __init__(
        self,
        url: str,
        *,
        refresh_interval_s: float = 15.0,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ExporterConfigError(f"attribution url must be an http(s) URL, got {url!r}")
        for name, value in (("refresh_interval_s", refresh_interval_s), ("timeout_s", timeout_s)):
            if not (math.isfinite(value) and value > 0):
                raise ExporterConfigError(
                    f"{name} must be a positive number of seconds, got {value!r}"
                )
        self.url = url
        parts = urlsplit(url)
        self.shown_url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        """The URL as logs and errors show it: never a `user:password@` it may carry."""
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), transport=transport)
        self._owners: Mapping[int, ProcessOwner] = _EMPTY
        self.error: str | None = None
        self._stop = threading.Event()
        self.refresh()
        self._thread = threading.Thread(
            target=self._run, args=(refresh_interval_s,), name="gpu-attribution", daemon=True
        )
        self._thread.start()

    def owners(self) -> Mapping[int, ProcessOwner]:
        return self._owners

    def refresh(self) -> None:
        """Fetch now; on failure log and keep the last good mapping."""
        try:
            response = self._client.get(self.url)
            if response.status_code != 200:
                raise ExporterConfigError(
                    f"{self.shown_url}: answered HTTP {response.status_code}"
                )
            try:
                groups = response.json()
            except ValueError:
                raise ExporterConfigError(f"{self.shown_url}: answer is not JSON") from None
            self._owners = MappingProxyType(
                owners_from_target_groups(groups, source=self.shown_url)
            )
            self.error = None
        except (httpx.HTTPError, ExporterConfigError) as error:
            message = str(error) if isinstance(error, ExporterConfigError) else (
                f"{self.shown_url}: cannot fetch: {error}")
            if message != self.error:
                logger.error("attribution %s; keeping the last good mapping (%d pids)",
                             message, len(self._owners))
            self.error = message

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # a background loop logs and goes on
                logger.exception("attribution refresh from %s failed", self.shown_url)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._client.close()
