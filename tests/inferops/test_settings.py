"""Settings: Prometheus-shaped scrape configs, durations, and errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferops import ConfigError, load_settings, parse_duration, parse_settings, scrape_targets

GOOD = """\
store:
  url: sqlite:///var/inferops.db
global:
  scrape_interval: 15s
  scrape_timeout: 10s
  evaluation_interval: 30s
scrape_configs:
  - job_name: nodes
    scrape_interval: 5s
    static_configs:
      - targets: ["10.0.0.1:9400", "10.0.0.2:9400"]
        labels: {pool: h100}
  - job_name: router
    metrics_path: /internal/metrics
    static_configs:
      - targets: ["gateway:8000"]
remediation:
  cooldown: 5m
"""


def test_a_prometheus_style_file_becomes_one_target_per_static_address() -> None:
    settings = parse_settings(GOOD, environ={})
    targets = [
        (t.job, t.url, dict(t.labels), t.interval_s, t.timeout_s) for t in scrape_targets(settings)
    ]
    assert targets == [
        ("nodes", "http://10.0.0.1:9400/metrics", {"pool": "h100"}, 5.0, 5.0),
        ("nodes", "http://10.0.0.2:9400/metrics", {"pool": "h100"}, 5.0, 5.0),
        ("router", "http://gateway:8000/internal/metrics", {}, 15.0, 10.0),
    ]
    assert settings.global_.evaluation_interval == 30.0
    assert settings.remediation.cooldown == 300.0
    assert settings.store.url == "sqlite:///var/inferops.db"


def test_the_store_url_from_the_environment_wins_over_the_file() -> None:
    settings = parse_settings(GOOD, environ={"INFEROPS_STORE_URL": "postgresql+psycopg://u:p@db/x"})
    assert settings.store.url == "postgresql+psycopg://u:p@db/x"


def test_an_explicit_override_wins_over_the_environment() -> None:
    settings = parse_settings(
        GOOD,
        environ={"INFEROPS_STORE_URL": "sqlite:///env.db"},
        overrides={"store.url": "sqlite:///arg.db"},
    )
    assert settings.store.url == "sqlite:///arg.db"


def test_no_file_gives_the_embedded_defaults() -> None:
    settings = load_settings(None, environ={})
    assert settings.store.url == "sqlite:///.inferops/inferops.db"
    assert settings.global_.scrape_interval == 2.0
    assert settings.scrape_configs == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "global:\n  scrape_interval: soon\n",
            "inferops.yaml:2: global.scrape_interval: "
            "expected a duration such as 15s, 1m or 500ms, got 'soon'",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [nohost]\n",
            "inferops.yaml:4: scrape_configs[0].static_configs[0].targets: "
            "expected host:port, got 'nohost'",
        ),
        (
            "store:\n  url: mysql://x\n",
            "inferops.yaml:2: store.url: expected a SQLAlchemy URL starting sqlite:/// or "
            "postgresql+psycopg://, got 'mysql://x'",
        ),
        ("remediation:\n  cooldwn: 5m\n", "inferops.yaml:2: remediation.cooldwn: unknown field"),
        (
            "dashboard:\n  port: 70000\n",
            "inferops.yaml:2: dashboard.port: Input should be less than or equal to 65535",
        ),
        (
            "scrape_configs:\n  - static_configs: []\n",
            "inferops.yaml:2: scrape_configs[0].job_name: Field required",
        ),
        (
            "alerting:\n  receivers:\n    - name: ops\n      url: ftp://x\n",
            "inferops.yaml:4: alerting.receivers[0].url: expected an http(s) URL, got 'ftp://x'",
        ),
        (
            "- just\n- a list\n",
            "inferops.yaml:1: <document>: expected a mapping of settings sections",
        ),
        (
            "global: [unclosed\n",
            "inferops.yaml:2: not valid YAML: expected ',' or ']', but got '<stream end>'",
        ),
    ],
    ids=[
        "a bad duration names its line and field",
        "a target without a port names the target",
        "an unknown database scheme is refused",
        "a misspelt field is refused, not ignored",
        "an out-of-range port says the limit",
        "a missing job name names the job's line",
        "a receiver URL must be http",
        "a document that is not a mapping is refused",
        "broken YAML names the line",
    ],
)
def test_bad_settings_are_refused_with_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(text, filename="inferops.yaml", environ={})
    assert str(error.value) == message


def test_relative_paths_are_read_beside_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "inferops.yaml"
    config.parent.mkdir()
    config.write_text("slo:\n  files: [slos.yaml]\n", encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.resolve(settings.slo.files[0]) == tmp_path / "conf" / "slos.yaml"


def test_a_missing_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path / "nope.yaml", environ={})
    assert (
        str(error.value)
        == f"{tmp_path / 'nope.yaml'}: cannot read settings: No such file or directory"
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("30d", 2_592_000.0),
        ("2h", 7200.0),
        (15, 15.0),
        (0.25, 0.25),
    ],
)
def test_durations_read_as_prometheus_writes_them(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


FILE_SD = """\
scrape_configs:
  - job_name: nodes
    scrape_interval: 5s
    static_configs:
      - targets: ["10.0.0.1:9400"]
    file_sd_configs:
      - files: [targets/*.json, more.yaml]
        refresh_interval: 30s
      - files: [other.yml]
"""


def test_file_sd_configs_read_as_prometheus_spells_them() -> None:
    settings = parse_settings(FILE_SD, environ={})
    first, second = settings.scrape_configs[0].file_sd_configs
    assert (first.files, first.refresh_interval) == (["targets/*.json", "more.yaml"], 30.0)
    assert (second.files, second.refresh_interval) == (["other.yml"], 300.0)  # Prometheus's 5m


def test_discovered_groups_become_targets_after_the_static_ones() -> None:
    from collectors import TargetGroup

    settings = parse_settings(FILE_SD, environ={})
    groups = [
        TargetGroup(("10.0.0.2:9400", "10.0.0.1:9400"), {"pool": "h100"}, "a.json:0"),
        TargetGroup(
            ("10.0.0.3:9401",),
            {"__scheme__": "https", "__metrics_path__": "/dcgm", "pool": "a100"},
            "a.json:1",
        ),
    ]
    targets = [(t.url, dict(t.labels), t.interval_s) for t in scrape_targets(settings, {0: groups})]
    assert targets == [
        ("http://10.0.0.1:9400/metrics", {}, 5.0),
        ("http://10.0.0.2:9400/metrics", {"pool": "h100"}, 5.0),
        ("http://10.0.0.1:9400/metrics", {"pool": "h100"}, 5.0),
        ("https://10.0.0.3:9401/dcgm", {"pool": "a100"}, 5.0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [t.txt]\n",
            "inferops.yaml:4: scrape_configs[0].file_sd_configs[0].files: "
            "file_sd files must end in .json, .yml or .yaml, got 't.txt'",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: []\n",
            "inferops.yaml:4: scrape_configs[0].file_sd_configs[0].files: "
            "List should have at least 1 item after validation, not 0",
        ),
        (
            "store:\n  retention_raw: 0s\n",
            "inferops.yaml:2: store.retention_raw: Input should be greater than 0",
        ),
    ],
    ids=["a file_sd file of unknown format", "file_sd without files", "no raw retention"],
)
def test_bad_discovery_and_retention_settings_name_their_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(text, filename="inferops.yaml", environ={})
    assert str(error.value) == message


def test_retention_defaults_keep_raw_six_hours_and_rollups_35_days() -> None:
    defaults = load_settings(None, environ={}).store
    assert (defaults.retention_raw, defaults.retention_rollup, defaults.compaction_interval) == (
        6 * 3600.0,
        35 * 86400.0,
        300.0,
    )
    custom = parse_settings("store:\n  retention_raw: 2h\n  retention_rollup: 90d\n", environ={})
    assert (custom.store.retention_raw, custom.store.retention_rollup) == (7200.0, 90 * 86400.0)


def test_rollups_must_outlive_raw_samples() -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings("store:\n  retention_raw: 40d\n", filename="inferops.yaml", environ={})
    assert str(error.value) == (
        "inferops.yaml:1: store: retention_rollup (3024000s) must be at least "
        "retention_raw (3456000s)"
    )
