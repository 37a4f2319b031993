"""parse_exposition: the Prometheus text format, checked against prometheus_client's parser."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Exemplar

from collectors import ExpositionError, ScrapedSample, parse_exposition

NOW = 1_767_000_000.0

# A vLLM (v1 engine, 0.10-era) /metrics excerpt in the shape its multiprocess registry writes
# it: labels sorted by name, `engine` and `model_name` on every engine series, histograms
# with vLLM's own buckets (vllm/v1/metrics/loggers.py), the API server's
# prometheus-fastapi-instrumentator counter, and a free-form info gauge.
VLLM_METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-0.6B"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen3-0.6B"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="Qwen/Qwen3-0.6B"} 0.0123
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="Qwen/Qwen3-0.6B"} 14030.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="Qwen/Qwen3-0.6B"} 847.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="Qwen/Qwen3-0.6B"} 13.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="Qwen/Qwen3-0.6B"} 2.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="Qwen/Qwen3-0.6B"} 0.0
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="Qwen/Qwen3-0.6B"} 21.37
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="Qwen/Qwen3-0.6B"} 1.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.5",model_name="Qwen/Qwen3-0.6B"} 3.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.8",model_name="Qwen/Qwen3-0.6B"} 6.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="Qwen/Qwen3-0.6B"} 9.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.5",model_name="Qwen/Qwen3-0.6B"} 11.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="2.0",model_name="Qwen/Qwen3-0.6B"} 13.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="2.5",model_name="Qwen/Qwen3-0.6B"} 14.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="5.0",model_name="Qwen/Qwen3-0.6B"} 15.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="10.0",model_name="Qwen/Qwen3-0.6B"} 15.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="Qwen/Qwen3-0.6B"} 15.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="Qwen/Qwen3-0.6B"} 15.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_sum{engine="0",model_name="Qwen/Qwen3-0.6B"} 1.02
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="Qwen/Qwen3-0.6B"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="Qwen/Qwen3-0.6B"} 12.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="1.0",model_name="Qwen/Qwen3-0.6B"} 15.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="2.5",model_name="Qwen/Qwen3-0.6B"} 15.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="Qwen/Qwen3-0.6B"} 15.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="Qwen/Qwen3-0.6B"} 15.0
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",calculate_kv_scales="False",\
cpu_offload_gb="0",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",\
num_cpu_blocks="None",num_gpu_blocks="2340",prefix_caching_hash_algo="builtin",\
sliding_window="None",swap_space="4",swap_space_bytes="4294967296"} 1.0
# HELP http_requests_total Total number of requests by method, status and handler.
# TYPE http_requests_total counter
http_requests_total{handler="/v1/completions",method="POST",status="2xx"} 15.0
http_requests_total{handler="/v1/completions",method="POST",status="4xx"} 1.0
http_requests_total{handler="/health",method="GET",status="2xx"} 120.0
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 13422.0
"""

# dcgm-exporter (3.3/4.x) output for one GPU: its default-counters.csv fields, with the
# labels it writes (gpu, UUID, pci_bus_id, device, modelName, Hostname, driver version),
# the space-less label style, integer values, and an XID series carrying err_code/err_msg.
_GPU = (
    'gpu="0",UUID="GPU-15704b32-f531-14ce-0530-1ac21e4b68e6",pci_bus_id="00000000:53:00.0",'
    'device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="ip-10-0-180-136.ec2.internal",'
    'DCGM_FI_DRIVER_VERSION="580.105.08"'
)
DCGM_METRICS = f"""\
# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
DCGM_FI_DEV_SM_CLOCK{{{_GPU}}} 1980
# HELP DCGM_FI_DEV_MEM_CLOCK Memory clock frequency (in MHz).
# TYPE DCGM_FI_DEV_MEM_CLOCK gauge
DCGM_FI_DEV_MEM_CLOCK{{{_GPU}}} 2619
# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{{{_GPU}}} 31
# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).
# TYPE DCGM_FI_DEV_POWER_USAGE gauge
DCGM_FI_DEV_POWER_USAGE{{{_GPU}}} 69.585000
# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).
# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{_GPU}}} 128996013
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{{{_GPU}}} 87
# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.
# TYPE DCGM_FI_DEV_XID_ERRORS gauge
DCGM_FI_DEV_XID_ERRORS{{{_GPU},err_code="0",err_msg="No Error"}} 0
# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{{{_GPU}}} 7531
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{{{_GPU}}} 73549
# HELP DCGM_FI_DEV_ECC_DBE_VOL_TOTAL Total number of double-bit volatile ECC errors.
# TYPE DCGM_FI_DEV_ECC_DBE_VOL_TOTAL counter
DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{_GPU}}} 0
# HELP DCGM_FI_DEV_SLOWDOWN_TEMP
# TYPE DCGM_FI_DEV_SLOWDOWN_TEMP gauge
DCGM_FI_DEV_SLOWDOWN_TEMP{{{_GPU}}} 93
"""
DCGM_LABELS = {
    "gpu": "0",
    "UUID": "GPU-15704b32-f531-14ce-0530-1ac21e4b68e6",
    "pci_bus_id": "00000000:53:00.0",
    "device": "nvidia0",
    "modelName": "NVIDIA H100 80GB HBM3",
    "Hostname": "ip-10-0-180-136.ec2.internal",
    "DCGM_FI_DRIVER_VERSION": "580.105.08",
}


def reference(text: str, default_timestamp_s: float = NOW) -> list[tuple[Any, ...]]:
    """What prometheus_client's own parser reads, in parse_exposition's shape."""
    return [
        (
            s.name,
            dict(s.labels),
            _v(s.value),
            default_timestamp_s if s.timestamp is None else float(s.timestamp),
        )
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def ours(text: str, default_timestamp_s: float = NOW, **kwargs: Any) -> list[tuple[Any, ...]]:
    return [
        (s.name, dict(s.labels), _v(s.value), s.timestamp_s)
        for s in parse_exposition(text, default_timestamp_s=default_timestamp_s, **kwargs)
    ]


def _v(value: float) -> Any:
    """NaN is not equal to itself; compare it as a marker."""
    return "NaN" if math.isnan(value) else float(value)


def real_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests", "Requests.", ["handler", "method", "status"], registry=registry
    )
    requests.labels("/v1/completions", "POST", "2xx").inc(41)
    requests.labels("/v1/completions", "POST", "5xx").inc(2)
    latency = Histogram(
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        ["model_name"],
        buckets=[0.3, 0.5, 0.8, 1.0, 2.5, 5.0, 10.0],
        registry=registry,
    )
    for value in (0.2, 0.7, 0.9, 2.4, 3.0, 12.0):
        latency.labels("inferops-tiny").observe(value)
    latency.labels('quote " backslash \\ newline \n end').observe(0.4)
    running = Gauge("vllm:num_requests_running", "Running.", ["model_name"], registry=registry)
    running.labels("inferops-tiny").set(3)
    Gauge("temperature", "NaN and infinities.", registry=registry).set(float("nan"))
    Gauge("limit", "Infinity.", registry=registry).set(float("inf"))
    Gauge("floor", "-Infinity.", registry=registry).set(float("-inf"))
    queue = Summary("queue_seconds", "A summary.", ["pool"], registry=registry)
    queue.labels("h100").observe(0.25)
    queue.labels("h100").observe(1e-9)
    Info("build", "Build info.", registry=registry).info({"version": "1.2.3", "commit": "abc"})
    Enum("state", "An enum.", states=["up", "down"], registry=registry).state("down")
    return registry


def test_real_registry_reads_exactly_as_prometheus_client_reads_it() -> None:
    text = generate_latest(real_registry()).decode()
    expected = reference(text)
    assert ours(text) == expected
    names = {sample[0] for sample in expected}
    # The shapes the comparison covers: counter, _created, histogram, summary, info, enum.
    assert {
        "http_requests_total",
        "http_requests_created",
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:e2e_request_latency_seconds_sum",
        "queue_seconds_count",
        "build_info",
        "state",
    } <= names


def test_histogram_buckets_and_escaped_label_values() -> None:
    samples = parse_exposition(generate_latest(real_registry()).decode(), default_timestamp_s=NOW)
    odd = [s for s in samples if s.labels.get("model_name", "").startswith("quote")]
    assert {s.labels["model_name"] for s in odd} == {'quote " backslash \\ newline \n end'}
    buckets = {
        s.labels["le"]: s.value
        for s in samples
        if s.name == "vllm:e2e_request_latency_seconds_bucket"
        and s.labels["model_name"] == "inferops-tiny"
    }
    assert buckets == {
        "0.3": 1.0,
        "0.5": 1.0,
        "0.8": 2.0,
        "1.0": 3.0,
        "2.5": 4.0,
        "5.0": 5.0,
        "10.0": 5.0,
        "+Inf": 6.0,
    }
    assert all(s.timestamp_s == NOW and not s.stale for s in samples)


class Custom:
    """A collector yielding prebuilt families (with timestamps, which registries allow)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def test_explicit_timestamps_are_milliseconds() -> None:
    gauge = GaugeMetricFamily("queue_depth", "Depth.", labels=["pool"])
    gauge.add_metric(["a"], 4.0, timestamp=1_700_000_000.123)
    gauge.add_metric(["b"], 5.0)
    registry = CollectorRegistry()
    registry.register(Custom([gauge]))
    text = generate_latest(registry).decode()
    assert 'queue_depth{pool="a"} 4.0 1700000000123' in text
    assert (
        ours(text)
        == reference(text)
        == [
            ("queue_depth", {"pool": "a"}, 4.0, 1_700_000_000.123),
            ("queue_depth", {"pool": "b"}, 5.0, NOW),
        ]
    )


def test_vllm_excerpt() -> None:
    samples = parse_exposition(VLLM_METRICS, default_timestamp_s=NOW)
    assert ours(VLLM_METRICS) == reference(VLLM_METRICS)
    engine = {"engine": "0", "model_name": "Qwen/Qwen3-0.6B"}
    assert ScrapedSample("vllm:num_requests_running", engine, 2.0, NOW) in samples
    assert (
        ScrapedSample("vllm:e2e_request_latency_seconds_bucket", {**engine, "le": "2.5"}, 14.0, NOW)
        in samples
    )
    assert (
        ScrapedSample(
            "vllm:e2e_request_latency_seconds_bucket", {**engine, "le": "+Inf"}, 15.0, NOW
        )
        in samples
    )
    assert (
        ScrapedSample(
            "http_requests_total",
            {"handler": "/v1/completions", "method": "POST", "status": "4xx"},
            1.0,
            NOW,
        )
        in samples
    )
    info = next(s for s in samples if s.name == "vllm:cache_config_info")
    assert info.labels["num_gpu_blocks"] == "2340" and len(info.labels) == 13
    assert len(samples) == 32


def test_dcgm_exporter_excerpt() -> None:
    samples = parse_exposition(DCGM_METRICS, default_timestamp_s=NOW)
    # prometheus_client appends `_total` to the samples of a counter family named without it
    # (dcgm-exporter's counters); Prometheus keeps the names as written, and so do we.
    assert ours(DCGM_METRICS) == [
        (name.removesuffix("_total"), *rest) for name, *rest in reference(DCGM_METRICS)
    ]
    by_name = {s.name: s for s in samples}
    assert by_name["DCGM_FI_DEV_GPU_UTIL"] == ScrapedSample(
        "DCGM_FI_DEV_GPU_UTIL", DCGM_LABELS, 87.0, NOW
    )
    assert by_name["DCGM_FI_DEV_POWER_USAGE"].value == 69.585
    assert by_name["DCGM_FI_DEV_XID_ERRORS"].labels == {
        **DCGM_LABELS,
        "err_code": "0",
        "err_msg": "No Error",
    }
    assert len(samples) == 11


def test_old_dcgm_exporter_spaces_after_commas() -> None:
    # dcgm-exporter 2.x wrote `{gpu="0", UUID="..."}`, as its README still shows.
    text = 'DCGM_FI_DEV_SM_CLOCK{gpu="0", UUID="GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"} 139\n'
    assert (
        ours(text)
        == reference(text)
        == [
            (
                "DCGM_FI_DEV_SM_CLOCK",
                {"gpu": "0", "UUID": "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"},
                139.0,
                NOW,
            )
        ]
    )


def test_lexical_corners() -> None:
    text = (
        "\n"
        "# a free-form comment\n"
        "#no space after the hash\n"
        "  \t\n"
        "plain 1\n"
        "  indented 2\n"
        "tabs\t3\t1700000000000\n"
        "trailing_blanks 4   \n"
        "crlf 5\r\n"
        "empty_set{} 6\n"
        'commas{a="1",} 7\n'
        'spaced{ a = "1" , b="x y" } 8\n'
        'brace{a="}{"} 9\n'
        'unknown_escape{a="tab\\tand\\\\n"} 10\n'
        'inf_values{a="1"} +Inf\n'
        "neg_inf -Inf\n"
        "nan NaN\n"
        "sci 1.5e-3\n"
        "negative_ts 1 -1000\n"
        "colon:name:x 1\n"
        "_leading_underscore 1\n"
    )
    got = ours(text)
    assert got == [
        ("plain", {}, 1.0, NOW),
        ("indented", {}, 2.0, NOW),
        ("tabs", {}, 3.0, 1_700_000_000.0),
        ("trailing_blanks", {}, 4.0, NOW),
        ("crlf", {}, 5.0, NOW),
        ("empty_set", {}, 6.0, NOW),
        ("commas", {"a": "1"}, 7.0, NOW),
        ("spaced", {"a": "1", "b": "x y"}, 8.0, NOW),
        ("brace", {"a": "}{"}, 9.0, NOW),
        ("unknown_escape", {"a": "tab\\tand\\n"}, 10.0, NOW),
        ("inf_values", {"a": "1"}, math.inf, NOW),
        ("neg_inf", {}, -math.inf, NOW),
        ("nan", {}, "NaN", NOW),
        ("sci", {}, 0.0015, NOW),
        ("negative_ts", {}, 1.0, -1.0),
        ("colon:name:x", {}, 1.0, NOW),
        ("_leading_underscore", {}, 1.0, NOW),
    ]


def test_names_are_kept_as_written() -> None:
    # prometheus_client renames samples of a counter family without `_total`; Prometheus,
    # and this parser, keep what the exporter wrote.
    text = "# TYPE requests counter\nrequests 3\n"
    assert ours(text) == [("requests", {}, 3.0, NOW)]


BAD_LINES = {
    "duplicate label": ('m{a="1",a="2"} 1', "duplicate label name 'a'"),
    "duplicate label with escapes": ('m{a="\\"",a="2"} 1', "duplicate label name 'a'"),
    "name starts with a digit": ("9m 1", "invalid metric name"),
    "dash in a name": ("m-x 1", "invalid character '-' in metric name"),
    "unterminated quote": ('m{a="1} 1', "unterminated quoted value of label 'a'"),
    "unterminated quote at the end": ('m{a="1\\"} 1', "unterminated quoted value"),
    "unterminated label set": ('m{a="1" 1', "expected ',' or '}'"),
    "missing brace": ('m{a="1"', "missing '}'"),
    "unquoted value": ("m{a=1} 1", "the value of label 'a' must be in double quotes"),
    "missing comma": ('m{a="1"b="2"} 1', "expected ',' or '}'"),
    "invalid label name": ('m{1a="1"} 1', "invalid label name"),
    "reserved __name__": ('m{__name__="x"} 1', "'__name__' is reserved"),
    "no metric name": ('{__name__="m"} 1', "missing metric name"),
    "missing value": ("m", "missing value for m"),
    "missing value after labels": ('m{a="1"}', "missing value for m"),
    "bad value": ("m one", "invalid value 'one'"),
    "underscore in value": ("m 1_000", "invalid value '1_000'"),
    "hex value": ("m 0x10", "invalid value '0x10'"),
    "fractional timestamp": ("m 1 1.5", "expected integer milliseconds"),
    "extra token": ("m 1 2 3", "unexpected text after the timestamp"),
    "unknown type": ("# TYPE m histogramz", "unknown metric type 'histogramz'"),
    "TYPE without type": ("# TYPE m", "'# TYPE m' without a type"),
    "HELP without name": ("# HELP", "'# HELP' without a metric name"),
    "invalid name in TYPE": ("# TYPE m-x gauge", "invalid metric name 'm-x'"),
}


@pytest.mark.parametrize("line, message", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_bad_line_names_the_line_and_the_fault(line: str, message: str) -> None:
    text = f"# HELP ok fine\n# TYPE ok gauge\nok 1\n\n{line}\nafter 2\n"
    with pytest.raises(ExpositionError) as caught:
        parse_exposition(text, default_timestamp_s=NOW)
    assert caught.value.line == 5
    assert str(caught.value).startswith("line 5: ")
    assert message in str(caught.value)


def test_openmetrics_text_is_tolerated() -> None:
    text = (
        "# HELP requests Requests.\n"
        "# TYPE requests counter\n"
        "# UNIT requests requests\n"
        'requests_total{code="200"} 7 1700000000.250\n'
        'requests_created{code="200"} 1.6999e9 1700000000.250\n'
        "# TYPE latency histogram\n"
        'latency_bucket{le="0.5"} 3 # {trace_id="a b # c"} 0.42 1700000000.1\n'
        'latency_bucket{le="+Inf"} 4 # {trace_id="d"} 9.1\n'
        "latency_count 4\n"
        "latency_sum 10.3\n"
        "# TYPE build info\n"
        'build_info{version="1"} 1\n'
        "# EOF\n"
    )
    assert ours(text) == [
        ("requests_total", {"code": "200"}, 7.0, 1_700_000_000.25),
        ("requests_created", {"code": "200"}, 1.6999e9, 1_700_000_000.25),
        ("latency_bucket", {"le": "0.5"}, 3.0, NOW),
        ("latency_bucket", {"le": "+Inf"}, 4.0, NOW),
        ("latency_count", {}, 4.0, NOW),
        ("latency_sum", {}, 10.3, NOW),
        ("build_info", {"version": "1"}, 1.0, NOW),
    ]


def test_openmetrics_from_prometheus_client_with_exemplars() -> None:
    registry = CollectorRegistry()
    histogram = HistogramMetricFamily("latency_seconds", "Latency.", labels=["path"])
    histogram.add_metric(
        ["/v1"],
        buckets=[
            ("0.5", 3.0, Exemplar({"trace_id": "abc"}, 0.4, 1_700_000_000.5)),
            ("+Inf", 5.0, None),
        ],
        sum_value=4.2,
        timestamp=1_700_000_001.75,
    )
    counter = CounterMetricFamily("jobs", "Jobs.", labels=["queue"], created=1_699_000_000.0)
    counter.add_metric(["q1"], 12.0, created=1_699_000_000.0)
    registry.register(Custom([histogram, counter]))
    text = generate_openmetrics(registry).decode()
    assert text.endswith("# EOF\n")
    expected = [
        (s.name, dict(s.labels), float(s.value), NOW if s.timestamp is None else float(s.timestamp))
        for family in openmetrics_families(text)
        for s in family.samples
    ]
    assert ours(text) == expected
    assert ("latency_seconds_bucket", {"path": "/v1", "le": "0.5"}, 3.0, 1_700_000_001.75) in (
        expected
    )


def test_openmetrics_content_after_eof_is_an_error() -> None:
    with pytest.raises(ExpositionError, match=r"line 3: content after '# EOF' \(line 2\)"):
        parse_exposition("a 1\n# EOF\nb 2\n", default_timestamp_s=NOW, openmetrics=True)
    # In the text format `# EOF` is a comment like any other.
    assert ours("a 1\n# EOF\nb 2\n") == [("a", {}, 1.0, NOW), ("b", {}, 2.0, NOW)]


def test_openmetrics_can_be_forced_either_way() -> None:
    # A text-format body is read in milliseconds even if it happens to end in `# EOF`.
    assert ours("a 1 2000\n# EOF\n", openmetrics=False) == [("a", {}, 1.0, 2.0)]
    assert ours("a 1 2000\n", openmetrics=True) == [("a", {}, 1.0, 2000.0)]


def test_empty_body() -> None:
    assert parse_exposition("", default_timestamp_s=NOW) == []
    assert parse_exposition("\n\n# only comments\n", default_timestamp_s=NOW) == []


# -- property: anything prometheus_client writes, both parsers read the same -----------------

LABEL_NAMES = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,12}", fullmatch=True)
METRIC_NAMES = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", fullmatch=True).filter(
    lambda name: not name.startswith("__")
)
LABEL_VALUES = st.text(max_size=30)
VALUES = st.floats(allow_nan=True, allow_infinity=True)
TIMESTAMPS = st.none() | st.integers(min_value=0, max_value=4_000_000_000_000).map(
    lambda ms: ms / 1000
)


@st.composite
def families(draw: st.DrawFn) -> list[Metric]:
    result = []
    for index, name in enumerate(draw(st.lists(METRIC_NAMES, min_size=1, max_size=4, unique=True))):
        label_names = draw(st.lists(LABEL_NAMES, max_size=4, unique=True))
        family = GaugeMetricFamily(f"{name}_{index}", "Generated.", labels=label_names)
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            family.add_metric(
                [draw(LABEL_VALUES) for _ in label_names], draw(VALUES), timestamp=draw(TIMESTAMPS)
            )
        result.append(family)
    return result


@settings(max_examples=300, deadline=None)
@given(families())
def test_generated_expositions_read_as_prometheus_client_reads_them(
    generated: list[Metric],
) -> None:
    registry = CollectorRegistry()
    registry.register(Custom(generated))
    text = generate_latest(registry).decode()
    assert ours(text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(LABEL_NAMES, LABEL_VALUES, max_size=5), VALUES)
def test_label_values_round_trip(labels: dict[str, str], value: float) -> None:
    family = GaugeMetricFamily("roundtrip", "Round trip.", labels=list(labels))
    family.add_metric(list(labels.values()), value)
    registry = CollectorRegistry()
    registry.register(Custom([family]))
    (sample,) = parse_exposition(generate_latest(registry).decode(), default_timestamp_s=NOW)
    assert sample.labels == labels
    assert _v(sample.value) == _v(value)


# -- large bodies ----------------------------------------------------------------------------


def big_exposition() -> str:
    registry = CollectorRegistry()
    latency = Histogram(
        "vllm:e2e_request_latency_seconds",
        "Latency.",
        ["model_name", "engine"],
        buckets=[0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0],
        registry=registry,
    )
    requests = Counter(
        "http_requests", "Requests.", ["handler", "method", "status"], registry=registry
    )
    util = Gauge("DCGM_FI_DEV_GPU_UTIL", "Util.", list(DCGM_LABELS), registry=registry)
    for i in range(100):
        latency.labels(f"model-{i}", "0").observe(i / 10)
        requests.labels(f"/v1/h{i}", "POST", "2xx").inc(i)
        util.labels(*[f"{value}-{i}" for value in DCGM_LABELS.values()]).set(i)
    return generate_latest(registry).decode()


def test_a_large_realistic_body_reads_as_prometheus_client_reads_it() -> None:
    # Speed against prometheus_client's parser is measured by `python -m bench exposition_parse`.
    text = big_exposition()
    assert len(ours(text)) > 2000
    assert ours(text) == reference(text)


def test_a_large_body_parses() -> None:
    text = "".join(f'series{{i="{i}",pool="h100"}} {i}.5\n' for i in range(100_000))
    samples = parse_exposition(text, default_timestamp_s=NOW)
    assert len(samples) == 100_000
    assert samples[-1] == ScrapedSample("series", {"i": "99999", "pool": "h100"}, 99999.5, NOW)
