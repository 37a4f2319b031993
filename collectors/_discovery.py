"""Prometheus-style file-based service discovery (`file_sd_configs`).

A file holds a list of target groups, as Prometheus reads them:

    [{"targets": ["10.0.0.1:9400", "10.0.0.2:9400"], "labels": {"pool": "h100"}}]

in JSON (`.json`) or YAML (`.yml`, `.yaml`). `files` may use a glob in the last path element
(`targets/*.json`). Files are polled: every `refresh_interval_s` the patterns are expanded
again and a file whose modification time or size changed is read again. A file that cannot
be read or is malformed is logged with its name and the reason, and its last good target
groups are kept, so a half-written file never empties a job. A file that disappears takes
its targets with it, as in Prometheus. No `__meta_*` labels are added.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ._exceptions import DiscoveryError

__all__ = ["FileDiscovery", "TargetGroup", "parse_target_groups"]

logger = logging.getLogger("inferops.collectors.discovery")

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HOST_PORT = re.compile(r"[^\s/:@]+:\d{1,5}|\[[0-9a-fA-F:.]+\]:\d{1,5}")
KEPT_RESERVED_LABELS = frozenset({"__scheme__", "__metrics_path__"})
"""`__`-prefixed labels a group may set (per-group scheme and path, as in Prometheus);
other `__` labels are dropped, as Prometheus drops them after relabelling."""


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """One group of a discovery file: `host:port` targets sharing `labels`.

    `source` says where it came from (`path:index`), for logs and errors.
    """

    targets: tuple[str, ...]
    labels: Mapping[str, str]
    source: str


def parse_target_groups(text: str, *, filename: str) -> list[TargetGroup]:
    """The target groups of one file's text; `DiscoveryError` names the file, group and field."""
    try:
        if filename.endswith(".json"):
            raw: Any = json.loads(text)
        else:
            raw = yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise DiscoveryError(
            f"{filename}:{error.lineno}: not valid JSON: {error.msg}"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark is not None else filename
        raise DiscoveryError(
            f"{where}: not valid YAML: {getattr(error, 'problem', None) or error}"
        ) from None
    if raw is None:  # an empty YAML file: no groups (Prometheus reads it so too)
        return []
    if not isinstance(raw, list):
        raise DiscoveryError(
            f"{filename}: expected a list of target groups, got {type(raw).__name__}"
        )
    return [_group(entry, f"{filename}:{index}") for index, entry in enumerate(raw)]


def _group(entry: object, source: str) -> TargetGroup:
    if not isinstance(entry, dict):
        raise DiscoveryError(f"{source}: a target group must be a mapping, got {entry!r}")
    unknown = sorted(set(entry) - {"targets", "labels"})
    if unknown:
        raise DiscoveryError(f"{source}: unknown field {unknown[0]!r} (expected targets, labels)")
    targets = entry.get("targets")
    if not isinstance(targets, list):
        raise DiscoveryError(f"{source}: targets must be a list of host:port, got {targets!r}")
    for target in targets:
        if not isinstance(target, str) or _HOST_PORT.fullmatch(target) is None:
            raise DiscoveryError(f"{source}: targets: expected host:port, got {target!r}")
    labels = entry.get("labels") or {}
    if not isinstance(labels, dict):
        raise DiscoveryError(f"{source}: labels must be a mapping, got {labels!r}")
    kept: dict[str, str] = {}
    for name, value in labels.items():
        if not isinstance(name, str) or _LABEL_NAME.fullmatch(name) is None:
            raise DiscoveryError(f"{source}: labels: invalid label name {name!r}")
        if not isinstance(value, str):
            raise DiscoveryError(
                f"{source}: labels: value of {name!r} must be a string, got {value!r}"
            )
        if name.startswith("__") and name not in KEPT_RESERVED_LABELS:
            continue
        kept[name] = value
    return TargetGroup(tuple(targets), MappingProxyType(kept), source)


@dataclass(frozen=True, slots=True)
class _Seen:
    mtime_ns: int
    size: int
    groups: tuple[TargetGroup, ...]


class FileDiscovery:
    """Target groups from files matching `patterns`, re-read when they change.

    `refresh()` checks the files now; `run(on_change)` checks every `refresh_interval_s`
    and awaits `on_change(groups)` whenever the set of groups changed. Relative patterns
    are taken relative to `base_dir`.
    """

    def __init__(
        self,
        patterns: Sequence[str],
        *,
        refresh_interval_s: float = 300.0,
        base_dir: Path | None = None,
    ) -> None:
        if not patterns:
            raise ValueError("file discovery needs at least one file pattern")
        if not (math.isfinite(refresh_interval_s) and refresh_interval_s > 0):
            raise ValueError(
                f"refresh_interval_s must be a positive number of seconds, "
                f"got {refresh_interval_s!r}"
            )
        base = base_dir or Path.cwd()
        self._patterns = tuple(
            str(p if Path(p).is_absolute() else base / p) for p in patterns
        )
        self.refresh_interval_s = refresh_interval_s
        self._files: dict[str, _Seen] = {}
        self._groups: tuple[TargetGroup, ...] = ()

    @property
    def groups(self) -> tuple[TargetGroup, ...]:
        """The current groups, files in name order, groups in file order."""
        return self._groups

    def refresh(self) -> bool:
        """Read new and changed files, forget deleted ones; True if the groups changed."""
        paths = sorted({path for pattern in self._patterns for path in glob.glob(pattern)})
        files: dict[str, _Seen] = {}
        for path in paths:
            previous = self._files.get(path)
            try:
                stat = Path(path).stat()
            except OSError as error:
                logger.error("file_sd %s: cannot stat: %s", path, error.strerror or error)
                if previous is not None:
                    files[path] = previous
                continue
            if (
                previous is not None
                and previous.mtime_ns == stat.st_mtime_ns
                and previous.size == stat.st_size
            ):
                files[path] = previous
                continue
            try:
                text = Path(path).read_text(encoding="utf-8")
                groups = tuple(parse_target_groups(text, filename=path))
            except (OSError, UnicodeDecodeError, DiscoveryError) as error:
                reason = error.strerror if isinstance(error, OSError) else str(error)
                kept = len(previous.groups) if previous is not None else 0
                logger.error(
                    "file_sd %s: %s; keeping its last good target groups (%d)",
                    path,
                    reason,
                    kept,
                )
                # Remember the bad version, so that it is not read (and logged) every tick;
                # the last good groups stay.
                files[path] = _Seen(
                    stat.st_mtime_ns, stat.st_size, previous.groups if previous else ()
                )
                continue
            files[path] = _Seen(stat.st_mtime_ns, stat.st_size, groups)
        for gone in sorted(set(self._files) - set(files)):
            logger.info("file_sd %s: file is gone; its targets are removed", gone)
        self._files = files
        groups = tuple(group for path in sorted(files) for group in files[path].groups)
        changed = groups != self._groups
        self._groups = groups
        return changed

    async def run(
        self, on_change: Callable[[tuple[TargetGroup, ...]], Awaitable[None]]
    ) -> None:
        """Refresh every `refresh_interval_s` until cancelled; errors are logged, never fatal."""
        while True:
            await asyncio.sleep(self.refresh_interval_s)
            try:
                if await asyncio.to_thread(self.refresh):
                    await on_change(self._groups)
            except Exception:
                logger.exception("file_sd refresh of %s failed; trying again", self._patterns)
