"""Multi-window, multi-burn-rate alert windows (Google SRE Workbook, ch. 5), from versioned YAML.

A window pair fires when the error ratio over both its long and its short window exceeds
`burn_rate` times the error budget (1 - objective): the long window makes the alert
significant, the short one makes it stop soon after the errors do. Shipped sets live in
slo/windows/ (`sre-workbook-v1`, `demo-v1`); any file of the same form can be given by path::

    version: inferops/v1
    description: ...
    windows:
      - severity: page          # becomes the alert's `severity` label
        burn_rate: 14.4         # times the error budget
        long_window: 1h
        short_window: 5m
        for: 0s                 # optional; windows of one severity share it
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from ._exceptions import SloSpecError
from ._yaml_fields import FieldPath, YamlFields

WINDOWS_VERSION = "inferops/v1"


@dataclass(frozen=True, slots=True)
class BurnRateWindow:
    """Fire at `severity` when the error ratio over both windows exceeds `burn_rate` x budget."""

    severity: str
    long_window_s: float
    short_window_s: float
    burn_rate: float
    for_s: float = 0.0


def shipped_window_sets() -> list[str]:
    """Names of the window sets shipped with the package (`sre-workbook-v1`, ...)."""
    folder = resources.files("slo.windows")
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def load_burn_rate_windows(name_or_path: str) -> list[BurnRateWindow]:
    """A shipped set by name (`sre-workbook-v1`, `demo-v1`) or a windows YAML file by path."""
    shipped = shipped_window_sets()
    if name_or_path in shipped:
        resource = resources.files("slo.windows") / f"{name_or_path}.yaml"
        return parse_burn_rate_windows(resource.read_text(encoding="utf-8"), filename=name_or_path)
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SloSpecError(
            f"not a shipped window set ({', '.join(shipped)}) and not a readable file "
            f"({error.strerror})",
            filename=name_or_path,
        ) from None
    return parse_burn_rate_windows(text, filename=name_or_path)


def parse_burn_rate_windows(text: str, *, filename: str = "<string>") -> list[BurnRateWindow]:
    fields = YamlFields(text, filename)
    top = fields.mapping(
        fields.root, (), required=("version", "windows"), optional=("description",)
    )
    version = fields.string(top["version"], ("version",))
    if version != WINDOWS_VERSION:
        raise fields.error(
            top["version"],
            ("version",),
            f"unsupported version {version!r} (expected {WINDOWS_VERSION})",
        )
    if "description" in top:
        fields.string(top["description"], ("description",))
    windows: list[BurnRateWindow] = []
    for_by_severity: dict[str, float] = {}
    for index, node in enumerate(fields.sequence(top["windows"], ("windows",), non_empty=True)):
        path: FieldPath = ("windows", index)
        window = _read_window(fields, node, path)
        shared_for = for_by_severity.setdefault(window.severity, window.for_s)
        if window.for_s != shared_for:
            raise fields.error(
                node,
                (*path, "for"),
                f"windows of severity {window.severity!r} must share one 'for' (they become one "
                f"alert rule), got {window.for_s:g}s and {shared_for:g}s",
            )
        windows.append(window)
    return windows


def _read_window(fields: YamlFields, node: yaml.Node, path: FieldPath) -> BurnRateWindow:
    values = fields.mapping(
        node,
        path,
        required=("severity", "burn_rate", "long_window", "short_window"),
        optional=("for",),
    )
    severity = fields.string(values["severity"], (*path, "severity"))
    burn_rate = fields.number(values["burn_rate"], (*path, "burn_rate"))
    if burn_rate <= 0:
        raise fields.error(
            values["burn_rate"], (*path, "burn_rate"), f"must be above zero, got {burn_rate:g}"
        )
    long_s = fields.duration(values["long_window"], (*path, "long_window"))
    short_s = fields.duration(values["short_window"], (*path, "short_window"))
    if short_s <= 0:
        raise fields.error(
            values["short_window"], (*path, "short_window"), "must be longer than zero"
        )
    if long_s <= short_s:
        raise fields.error(
            values["long_window"], (*path, "long_window"), "must be longer than short_window"
        )
    for_s = fields.duration(values["for"], (*path, "for")) if "for" in values else 0.0
    return BurnRateWindow(
        severity=severity,
        long_window_s=long_s,
        short_window_s=short_s,
        burn_rate=burn_rate,
        for_s=for_s,
    )
