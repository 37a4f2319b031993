"""The sections of the settings file, one typed model each, and the duration syntax.

`_settings` puts them together into `Settings` and reads the file; this module holds what
each section accepts and its defaults.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")

ENV_STORE_URL = "INFEROPS_STORE_URL"
ENV_ADMIN_TOKEN = "INFEROPS_ADMIN_TOKEN"
ENV_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


def parse_duration(value: object) -> float:
    """Prometheus durations (`1m30s`, `500ms`, `30d`) or plain seconds, to seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 15s, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and any(match.groups()):
            days, hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
            return days * 86400 + hours * 3600 + minutes * 60 + seconds + millis / 1000
    raise ValueError(f"expected a duration such as 15s, 1m or 500ms, got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    """Where samples live and how long: raw samples for `retention_raw`, then 1-minute
    roll-ups until `retention_rollup`; `compaction_interval` is how often that is enforced."""

    url: str = "sqlite:///.inferops/inferops.db"
    retention_raw: Duration = Field(default=6 * 3600.0, gt=0)
    retention_rollup: Duration = Field(default=35 * 86400.0, gt=0)
    compaction_interval: Duration = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _rollups_outlive_raw(self) -> StoreSettings:
        if self.retention_rollup < self.retention_raw:
            raise ValueError(
                f"retention_rollup ({self.retention_rollup:.0f}s) must be at least "
                f"retention_raw ({self.retention_raw:.0f}s)"
            )
        return self

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite:", "postgresql")):
            raise ValueError(
                "expected a SQLAlchemy URL starting sqlite:/// or postgresql+psycopg://, "
                f"got {url!r}"
            )
        return url


class GlobalSettings(_Section):
    scrape_interval: Duration = 2.0
    scrape_timeout: Duration = 1.0
    evaluation_interval: Duration = 1.0


class StaticConfig(_Section):
    targets: list[str]
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("targets")
    @classmethod
    def _host_port(cls, targets: list[str]) -> list[str]:
        for target in targets:
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {target!r}")
        return targets


class FileSdConfig(_Section):
    """Prometheus's `file_sd_configs` entry: files (a glob in the last path element) of
    JSON or YAML target groups, read again every `refresh_interval` when they change."""

    files: list[str] = Field(min_length=1)
    refresh_interval: Duration = Field(default=300.0, gt=0)

    @field_validator("files")
    @classmethod
    def _known_extension(cls, files: list[str]) -> list[str]:
        for pattern in files:
            if not pattern.endswith((".json", ".yml", ".yaml")):
                raise ValueError(
                    f"file_sd files must end in .json, .yml or .yaml, got {pattern!r}"
                )
        return files


class HttpSdConfig(_Section):
    """Prometheus's `http_sd_configs` entry: a URL answering JSON target groups (the reference
    router's `/sd/targets`), fetched again every `refresh_interval`."""

    url: str
    refresh_interval: Duration = Field(default=60.0, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"expected an http(s) URL, got {url!r}")
        return url


class ScrapeConfig(_Section):
    job_name: str
    scrape_interval: Duration | None = None
    scrape_timeout: Duration | None = None
    metrics_path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"
    static_configs: list[StaticConfig] = Field(default_factory=list)
    file_sd_configs: list[FileSdConfig] = Field(default_factory=list)
    http_sd_configs: list[HttpSdConfig] = Field(default_factory=list)


class SloSettings(_Section):
    files: list[str] = Field(default_factory=list)
    windows: str = "sre-workbook-v1"


class ReceiverSettings(_Section):
    name: str
    url: str
    secret_env: str | None = None
    timeout: Duration = 5.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"expected an http(s) URL, got {url!r}")
        return url


class InhibitRuleSettings(_Section):
    """Alertmanager's `inhibit_rules` entry: while a source alert fires, target alerts with
    the same `equal` label values are not notified."""

    source_matchers: list[str] = Field(min_length=1)
    target_matchers: list[str] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _parsable(cls, matchers: list[str]) -> list[str]:
        from alerting import Matcher

        for text in matchers:
            Matcher.parse(text)  # MatcherError is a ValueError naming the matcher
        return matchers


class AlertingSettings(_Section):
    """Rules, receivers and Alertmanager's route timers; `watchdog` adds the always-firing
    dead-man's-switch alert; `delivery_max_backoff` caps the outbox's retry wait."""

    rule_files: list[str] = Field(default_factory=list)
    external_url: str = "http://127.0.0.1:8050"
    group_by: list[str] = Field(default_factory=lambda: ["alertname"])
    receivers: list[ReceiverSettings] = Field(default_factory=list)
    group_wait: Duration = 0.0
    group_interval: Duration = 0.0
    repeat_interval: Duration = Field(default=4 * 3600.0, gt=0)
    inhibit_rules: list[InhibitRuleSettings] = Field(default_factory=list)
    watchdog: bool = True
    delivery_initial_backoff: Duration = Field(default=1.0, gt=0)
    delivery_max_backoff: Duration = Field(default=60.0, gt=0)


class ApiSettings(_Section):
    """The control-plane HTTP API `inferops run` serves; its bearer token comes from the
    environment variable `token_env` (generated and saved when unset)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9095, ge=1, le=65535)
    token_env: str = "INFEROPS_API_TOKEN"


class KubernetesSettings(_Section):
    """The Kubernetes fleet driver (`remediation.driver: kubernetes`; docs/kubernetes.md):
    the cluster from the `kubeconfig` file (default ~/.kube/config) and `context`, or
    in-cluster, the serving pods `pod_selector`
    picks in `namespace`, on the nodes `node_selector` picks."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = Field(default="default", min_length=1)
    pod_selector: str = Field(default="app=llm-serving", min_length=1)
    node_selector: str | None = None
    eviction_deadline: Duration = Field(default=120.0, gt=0)
    replacement_timeout: Duration = Field(default=300.0, gt=0)
    request_timeout: Duration = Field(default=10.0, gt=0)


class RemediationSettings(_Section):
    enabled: bool = True
    driver: Literal["reference", "kubernetes"] = "reference"
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    fleet_url: str = "http://127.0.0.1:8000"
    admin_token_env: str = ENV_ADMIN_TOKEN
    policy_file: str | None = None
    dry_run: bool = False
    cooldown: Duration = 300.0
    min_healthy_nodes: int = Field(default=1, ge=0)
    verify_timeout: Duration = 15.0
    # Guards and verification (docs/remediation.md explains each).
    max_unavailable: str = Field(default="50%", pattern=r"^\d+%?$")
    breaker_max_share: float = Field(default=0.5, gt=0, le=1)
    breaker_window: Duration = 600.0
    breaker_close_after: Duration = 300.0
    node_capacity_requests: int = Field(default=64, ge=1)
    max_actions_per_hour: int = Field(default=20, ge=1)
    flap_threshold: int = Field(default=4, ge=1)
    flap_window: Duration = 600.0
    stale_after: Duration = 15.0
    escalate_after_cycles: int = Field(default=2, ge=1)
    ladder_window: Duration = 3600.0
    recovery_deadline: Duration = 60.0


class DashboardSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=1, le=65535)
    refresh: Duration = 2.0


class SourceSettings(_Section):
    """Where queries go: the embedded `store`, or an existing Prometheus (Thanos, Mimir) at
    `url` through its HTTP API, each call bounded by `timeout`."""

    kind: Literal["store", "prometheus"] = "store"
    url: str | None = None
    timeout: Duration = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _prometheus_has_url(self) -> SourceSettings:
        if self.kind == "prometheus" and not self.url:
            raise ValueError("kind prometheus needs url (e.g. http://127.0.0.1:9090)")
        if self.url is not None and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"url: expected an http(s) URL, got {self.url!r}")
        return self


class TracingSettings(_Section):
    """OpenTelemetry spans of the control plane (evaluation rounds, notification dispatch,
    remediation decisions), exported over OTLP/HTTP to `otlp_endpoint` (a base URL such as
    http://127.0.0.1:4318; unset: `OTEL_EXPORTER_OTLP_ENDPOINT`; neither: no tracing)."""

    otlp_endpoint: str | None = None
    service_name: str = Field(default="inferops-control-plane", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and (urlsplit(url).scheme not in ("http", "https")
                                or not urlsplit(url).netloc):
            raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:4318, got {url!r}")
        return url
