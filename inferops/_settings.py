"""One typed settings object for the control plane, from YAML with environment overrides.

Precedence is argument > environment variable > file > default, as in the OpenTelemetry SDK.
The scrape section mirrors Prometheus's `scrape_configs`, so a team can paste theirs.
Secrets (the fleet admin token, webhook secrets) are read from environment variables named
in the file, never written in it, and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, ValidationError

from ._exceptions import ConfigError
from ._settings_sections import (
    ENV_ADMIN_TOKEN,
    ENV_OTLP_ENDPOINT,
    ENV_STORE_URL,
    AlertingSettings,
    ApiSettings,
    DashboardSettings,
    FileSdConfig,
    GlobalSettings,
    HttpSdConfig,
    InhibitRuleSettings,
    KubernetesSettings,
    ReceiverSettings,
    RemediationSettings,
    ScrapeConfig,
    SloSettings,
    SourceSettings,
    StaticConfig,
    StoreSettings,
    TracingSettings,
    _Section,
    parse_duration,
)
from ._yaml_locations import compose_document, format_path, line_of

__all__ = [
    "ENV_ADMIN_TOKEN",
    "ENV_OTLP_ENDPOINT",
    "ENV_STORE_URL",
    "AlertingSettings",
    "ApiSettings",
    "DashboardSettings",
    "FileSdConfig",
    "GlobalSettings",
    "HttpSdConfig",
    "InhibitRuleSettings",
    "KubernetesSettings",
    "ReceiverSettings",
    "RemediationSettings",
    "ScrapeConfig",
    "Settings",
    "SloSettings",
    "SourceSettings",
    "StaticConfig",
    "StoreSettings",
    "TracingSettings",
    "load_settings",
    "parse_duration",
    "parse_settings",
]


class Settings(_Section):
    """Everything `inferops run`, `query`, `remediate` and `dashboard` need."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    source: SourceSettings = Field(default_factory=SourceSettings)
    global_: GlobalSettings = Field(default_factory=GlobalSettings, alias="global")
    scrape_configs: list[ScrapeConfig] = Field(default_factory=list)
    slo: SloSettings = Field(default_factory=SloSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    remediation: RemediationSettings = Field(default_factory=RemediationSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    """Relative file paths in the settings are read relative to the settings file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def resolve(self, path: str) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def burn_rate_windows(self) -> str:
        """`slo.windows` as `slo.load_burn_rate_windows` takes it: a shipped set's name stays a
        name; a YAML path is read beside the settings file, like every other relative path."""
        windows = self.slo.windows
        return str(self.resolve(windows)) if windows.endswith((".yaml", ".yml")) else windows

    def admin_token(self, environ: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        return env.get(self.remediation.admin_token_env) or None


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    url = environ.get(ENV_STORE_URL)
    if url:
        data = {**data, "store": {**data.get("store", {}), "url": url}}
    otlp = environ.get(ENV_OTLP_ENDPOINT, "").strip()
    tracing = data.get("tracing")
    if otlp and (tracing is None or (isinstance(tracing, dict)
                                     and tracing.get("otlp_endpoint") is None)):
        # The SDK's standard variable is a fallback: a file that names an endpoint wins.
        data = {**data, "tracing": {**(tracing or {}), "otlp_endpoint": otlp}}
    return data


def parse_settings(
    text: str,
    *,
    filename: str = "<string>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Validate a YAML document into `Settings`; errors name file, line and field."""
    try:
        raw = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark is not None else filename
        raise ConfigError(f"{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{filename}:1: <document>: expected a mapping of settings sections")
    data = _apply_environment(raw, os.environ if environ is None else environ)
    for key, value in (overrides or {}).items():
        section, _, field = key.partition(".")
        data = {**data, section: {**data.get(section, {}), field: value}}
    data["base_dir"] = base_dir or Path.cwd()
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        root = compose_document(text) if text.strip() else None
        first = error.errors()[0]
        path = [p for p in first["loc"] if isinstance(p, str | int)]
        if path and path[0] == "global_":
            path[0] = "global"
        line = line_of(root, path)
        where = f"{filename}:{line}" if line is not None else filename
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        raise ConfigError(f"{where}: {format_path(path)}: {message}") from None


def load_settings(
    path: str | Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read settings from `path`, or defaults (plus environment) when no file is given."""
    if path is None:
        return parse_settings("", environ=environ, overrides=overrides)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{file}: cannot read settings: {error.strerror}") from None
    return parse_settings(
        text,
        filename=str(file),
        base_dir=file.resolve().parent,
        environ=environ,
        overrides=overrides,
    )
