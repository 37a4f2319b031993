"""`inferops query` against the embedded store and against a real Prometheus holding the same
samples: promtool's text output, the HTTP API's JSON, times, ranges and clear errors."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from real_prometheus import backfill, running_prometheus
from typer.testing import CliRunner

from collectors import QueryError, SampleStore, ScrapedSample, open_database
from inferops._query_cli import parse_time, validate_expression
from inferops.cli import app

runner = CliRunner()

STEP_S = 15
SAMPLES = 40


def fleet(base: int) -> list[ScrapedSample]:
    """Every 15 s from `base`: a gauge per node and a counter (10 per sample on node-0)."""
    samples = []
    for i in range(SAMPLES):
        at = float(base + STEP_S * i)
        samples.append(ScrapedSample("temperature", {"node": "node-0"}, 40.0 + i % 3, at))
        samples.append(ScrapedSample("temperature", {"node": "node-1"}, 50.5, at))
        samples.append(ScrapedSample("requests_total", {"node": "node-0"}, 1000.0 + 10 * i, at))
    return samples


class Sources:
    """The same samples in an embedded store and in a real Prometheus, and a settings file
    for each; `at` is an evaluation time 5 s after the 31st sample."""

    def __init__(self, base: int, store_config: Path, prometheus_config: Path | None,
                 prometheus_url: str | None) -> None:
        self.base = base
        self.at = base + STEP_S * 30 + 5
        self.store_config = store_config
        self.prometheus_config = prometheus_config
        self.prometheus_url = prometheus_url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sources]:
    folder = tmp_path_factory.mktemp("query")
    base = int(time.time()) - STEP_S * SAMPLES - 60
    engine = open_database(f"sqlite:///{folder}/store.db")
    SampleStore(engine).append(fleet(base))
    engine.dispose()
    store_config = folder / "store.yaml"
    store_config.write_text(f"store:\n  url: sqlite:///{folder}/store.db\n")
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        yield Sources(base, store_config, None, None)
        return
    backfill(folder, fleet(base))
    with running_prometheus(folder, extra_args=()) as url:
        prometheus_config = folder / "prometheus-source.yaml"
        prometheus_config.write_text(
            f"store:\n  url: sqlite:///{folder}/unused.db\n"
            f"source:\n  kind: prometheus\n  url: {url}\n  timeout: 5s\n"
        )
        yield Sources(base, store_config, prometheus_config, url)


def config_of(sources: Sources, kind: str) -> Path:
    if kind == "store":
        return sources.store_config
    if sources.prometheus_config is None:
        pytest.skip("prometheus/promtool are not installed (Debian package 'prometheus')")
    return sources.prometheus_config


def query(config: Path, *args: str) -> Any:
    result = runner.invoke(app, ["query", *args, "--config", str(config)])
    return result


BOTH = pytest.mark.parametrize(
    "kind", ["store", pytest.param("prometheus", marks=pytest.mark.integration)]
)


@BOTH
def test_an_instant_query_prints_what_promtool_prints(sources: Sources, kind: str) -> None:
    at = sources.at  # 5 s after sample 30: node-0 reads 40 + 30 % 3 = 40
    result = query(config_of(sources, kind), "temperature", "--time", str(at))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f'temperature{{node="node-0"}} => 40 @[{at}]\n'
        f'temperature{{node="node-1"}} => 50.5 @[{at}]\n'
    )
    summed = query(config_of(sources, kind), "sum by (node) (temperature) * 2", "--time", str(at))
    assert summed.stdout == f'{{node="node-0"}} => 80 @[{at}]\n{{node="node-1"}} => 101 @[{at}]\n'
    scalar = query(config_of(sources, kind), "scalar(max(temperature)) - 0.5", "--time", str(at))
    assert scalar.stdout == f"scalar: 50 @[{at}]\n"


@BOTH
def test_json_is_the_http_api_answer(sources: Sources, kind: str) -> None:
    at = sources.at
    result = query(config_of(sources, kind), "temperature", "--time", str(at), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"__name__": "temperature", "node": "node-0"}, "value": [at, "40"]},
                {"metric": {"__name__": "temperature", "node": "node-1"}, "value": [at, "50.5"]},
            ],
        },
    }
    scalar = query(config_of(sources, kind), "1.5 * 2", "--time", str(at), "--json")
    assert json.loads(scalar.stdout) == {
        "status": "success",
        "data": {"resultType": "scalar", "result": [at, "3"]},
    }


@BOTH
def test_a_range_query_prints_one_block_per_series(sources: Sources, kind: str) -> None:
    end = sources.at  # steps at samples 28, 29 and 30 (+5 s): 40 + i % 3 = 41, 42, 40
    start = end - 2 * STEP_S
    args = ['temperature{node="node-0"}', "--start", str(start), "--end", str(end)]
    text = query(config_of(sources, kind), *args, "--step", "15s")
    assert text.exit_code == 0, text.output
    assert text.stdout == (
        f'temperature{{node="node-0"}} =>\n41 @[{start}]\n42 @[{start + 15}]\n40 @[{end}]\n'
    )
    as_json = query(config_of(sources, kind), *args, "--step", "15s", "--json")
    assert json.loads(as_json.stdout) == {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"__name__": "temperature", "node": "node-0"},
                    "values": [[start, "41"], [start + 15, "42"], [end, "40"]],
                }
            ],
        },
    }


@pytest.mark.integration
def test_the_store_answers_as_prometheus_itself_answers(sources: Sources) -> None:
    """Our `--json` over the store against Prometheus's own /api/v1/query answer."""
    if sources.prometheus_url is None:
        pytest.skip("prometheus/promtool are not installed (Debian package 'prometheus')")
    for expr in [
        "temperature",
        "max(temperature) by (node)",
        "temperature > 45",
        'count(temperature) + on() group_left vector(1)',
        "time()",
    ]:
        ours = query(sources.store_config, expr, "--time", str(sources.at), "--json")
        assert ours.exit_code == 0, ours.output
        theirs = httpx.post(
            f"{sources.prometheus_url}/api/v1/query",
            data={"query": expr, "time": str(sources.at)},
            timeout=5,
        ).json()
        assert json.loads(ours.stdout) == theirs, expr
    rate = 'rate(requests_total{node="node-0"}[1m])'
    ours = json.loads(query(sources.store_config, rate, "--time", str(sources.at), "--json").stdout)
    theirs = httpx.post(
        f"{sources.prometheus_url}/api/v1/query",
        data={"query": rate, "time": str(sources.at)},
        timeout=5,
    ).json()
    # 4 samples 45 s apart, +30 over them, extrapolated to the whole minute: 40 / 60 s.
    [mine], [real] = ours["data"]["result"], theirs["data"]["result"]
    assert float(mine["value"][1]) == pytest.approx(40 / 60, rel=1e-12)
    assert float(real["value"][1]) == pytest.approx(40 / 60, rel=1e-12)


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["sum(rate(x[5m])"], "error: invalid PromQL 'sum(rate(x[5m])': 1:4: parse error: "
                             "unclosed left parenthesis\n"),
        (["rate(x)"], "error: invalid PromQL 'rate(x)': parse error: expected type matrix in "
                      "call to function 'rate', got vector\n"),
        (["nosuchfn(x)"], "error: invalid PromQL 'nosuchfn(x)': parse error: unknown function "
                          "with name 'nosuchfn'\n"),
        (["  "], "error: empty PromQL expression\n"),
        (["up", "--time", "yesterday"], "error: --time 'yesterday': expected RFC3339 "
         "(2026-11-25T12:00:00Z), unix seconds, now or now-DURATION (now-1h)\n"),
        (["up", "--time", "2026-11-25T12:00:00"], "error: --time '2026-11-25T12:00:00': an "
         "RFC3339 time needs a zone (Z or +01:00)\n"),
        (["up", "--start", "now-1x"], "error: --start 'now-1x': expected a duration such as "
         "15s, 1m or 500ms, got '1x'\n"),
        (["up", "--start", "now", "--end", "now-1h"], "error: --end (now-1h) is before "
         "--start (now)\n"),
        (["up", "--start", "now-1h", "--step", "0s"], "error: --step '0s': must be positive\n"),
        (["up", "--time", "now", "--step", "1m"], "error: --time is for an instant query; use "
         "--start/--end/--step or --time\n"),
    ],
)
def test_bad_input_is_named_and_exits_2(sources: Sources, args: list[str], stderr: str) -> None:
    result = query(sources.store_config, *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", stderr)


def test_an_unreachable_prometheus_exits_1(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "inferops.yaml"
    config.write_text(f"source:\n  kind: prometheus\n  url: http://127.0.0.1:{port}\n")
    result = query(config, "up")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach Prometheus at http://127.0.0.1:{port}")


def test_a_prometheus_source_needs_a_url(tmp_path: Path) -> None:
    config = tmp_path / "inferops.yaml"
    config.write_text("source:\n  kind: prometheus\n")
    result = query(config, "up")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {config}:1: source: kind prometheus needs url (e.g. http://127.0.0.1:9090)\n",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", 1_000_000.0),
        ("now-1h", 996_400.0),
        ("now+90s", 1_000_090.0),
        ("now - 1m30s", 999_910.0),
        ("1795608000", 1_795_608_000.0),
        ("1795608000.25", 1_795_608_000.25),
        ("2026-11-25T12:00:00Z", 1_795_608_000.0),
        ("2026-11-25T13:00:00+01:00", 1_795_608_000.0),
        ("2026-11-25T12:00:00.5Z", 1_795_608_000.5),
    ],
)
def test_times_read_as_prometheus_and_grafana_write_them(text: str, expected: float) -> None:
    assert parse_time(text, now_s=1_000_000.0) == expected


@pytest.mark.parametrize(
    ("expr", "where"),
    [
        ("sum(\n  rate(x[5m) )", "2:12: parse error: unexpected character inside brackets: ')'"),
        ("sum(rate(x[5m])", "1:4: parse error: unclosed left parenthesis"),
        ('x{a="b}', '1:5: parse error: unterminated quoted string "'),
        ("rate(x[5m", "1:10: parse error: unexpected end of input inside brackets"),
        ("1 +", "parse error: invalid promql query"),  # the parser does not say where
    ],
)
def test_parse_errors_say_where_when_the_parser_tells_enough(expr: str, where: str) -> None:
    with pytest.raises(QueryError) as raised:
        validate_expression(expr)
    assert str(raised.value) == f"invalid PromQL {expr!r}: {where}"


@pytest.mark.integration
def test_the_control_plane_reads_rules_from_the_configured_prometheus(
    sources: Sources, tmp_path: Path
) -> None:
    """`source: prometheus`: alert rules are evaluated by that Prometheus, not the store."""
    if sources.prometheus_url is None:
        pytest.skip("prometheus/promtool are not installed (Debian package 'prometheus')")
    from collectors import PrometheusSource
    from inferops import ControlPlane, load_settings

    (tmp_path / "rules.yaml").write_text(
        "groups:\n  - name: gpu\n    rules:\n      - alert: GpuHot\n"
        "        expr: temperature > 50\n        labels: {severity: page}\n"
    )
    config = tmp_path / "inferops.yaml"
    config.write_text(
        f"store:\n  url: sqlite:///{tmp_path}/store.db\n"
        f"source:\n  kind: prometheus\n  url: {sources.prometheus_url}\n"
        "alerting:\n  rule_files: [rules.yaml]\n"
    )
    plane = ControlPlane(load_settings(config, environ={}))
    try:
        assert isinstance(plane.source, PrometheusSource)
        plane.evaluate_once(float(sources.at))
        assert sorted(
            ((dict(a.labels), str(a.state)) for a in plane.alert_store.active()),
            key=lambda pair: pair[0]["alertname"],
        ) == [
            ({"alertname": "GpuHot", "node": "node-1", "severity": "page"}, "firing"),
            ({"alertname": "Watchdog", "severity": "none"}, "firing"),  # the dead man's switch
        ]
    finally:
        plane.close()
