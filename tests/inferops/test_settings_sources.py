"""The `source` section and `http_sd_configs`, as the settings file spells them, and the GPU
exporter's attribution options: read, or refused naming the line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from exporters import ExporterConfigError
from inferops import ConfigError, parse_settings
from inferops.cli import app


def test_source_and_http_sd_read_as_written() -> None:
    settings = parse_settings(
        "source:\n  kind: prometheus\n  url: http://prom:9090\n  timeout: 1m\n"
        "scrape_configs:\n  - job_name: fleet\n    http_sd_configs:\n"
        "      - url: http://router:8000/sd/targets\n        refresh_interval: 15s\n"
        "      - url: https://other/sd\n",
        environ={},
    )
    assert (settings.source.kind, settings.source.url, settings.source.timeout) == (
        "prometheus",
        "http://prom:9090",
        60.0,
    )
    first, second = settings.scrape_configs[0].http_sd_configs
    assert (first.url, first.refresh_interval, first.timeout) == (
        "http://router:8000/sd/targets",
        15.0,
        10.0,
    )
    assert (second.url, second.refresh_interval) == ("https://other/sd", 60.0)


def test_the_default_source_is_the_store() -> None:
    source = parse_settings("", environ={}).source
    assert (source.kind, source.url, source.timeout) == ("store", None, 10.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source:\n  kind: thanos\n", "inferops.yaml:2: source.kind: Input should be 'store' or "
                                      "'prometheus'"),
        ("source:\n  kind: prometheus\n  url: prom:9090\n",
         "inferops.yaml:1: source: url: expected an http(s) URL, got 'prom:9090'"),
        ("source:\n  timeout: 0s\n", "inferops.yaml:2: source.timeout: Input should be greater "
                                     "than 0"),
        ("scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - url: file:///x\n",
         "inferops.yaml:4: scrape_configs[0].http_sd_configs[0].url: expected an http(s) URL, "
         "got 'file:///x'"),
        ("scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - {}\n",
         "inferops.yaml:4: scrape_configs[0].http_sd_configs[0].url: Field required"),
    ],
)
def test_bad_source_and_http_sd_settings_name_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(text, filename="inferops.yaml", environ={})
    assert str(raised.value) == message


def test_the_gpu_exporter_takes_one_attribution_source(tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(app, ["exporter", "gpu", "--backend", "sim", "--attribution-file",
                               str(tmp_path / "a.json"), "--attribution-url", "http://r/sd"])
    assert (both.exit_code, both.stderr) == (
        2, "error: give --attribution-file or --attribution-url, not both\n"
    )
    missing = runner.invoke(app, ["exporter", "gpu", "--backend", "sim", "--attribution-file",
                                  str(tmp_path / "owners.json")])
    assert isinstance(missing.exception, ExporterConfigError)  # `inferops` maps it to exit 2
    assert str(missing.exception) == (
        f"{tmp_path / 'owners.json'}: cannot read the attribution file: No such file or directory"
    )
