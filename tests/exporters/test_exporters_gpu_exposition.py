"""The direct GPU renderer against prometheus_client's generic path, and against promtool.

The proof that `GpuCollector.exposition()` may replace `generate_latest` for the GPU families:
for the same samples both texts parse identically with prometheus_client's own parser (and
are in fact byte-identical), over hand-picked states (faults, field errors, a failed backend,
hostile label values, extreme numbers) and over random samples (hypothesis).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import subprocess
from collections.abc import Callable

import pytest
from exporters_doubles import ManualClock, ScriptedBackend, gpu_sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters import (
    GpuCollector,
    GpuExposition,
    GpuSample,
    SimulatedGpuBackend,
    render_gpu_exposition,
)
from exporters._exposition_gpu_fields import FIELDS

Parsed = list[tuple[str, str, str, list[tuple[str, tuple[tuple[str, str], ...], object]]]]


def parsed(text: bytes) -> Parsed:
    """Every family as prometheus_client's parser reads it; NaN made comparable."""
    return [
        (family.name, family.type, family.documentation,
         [(s.name, tuple(sorted(s.labels.items())), "NaN" if math.isnan(s.value) else s.value)
          for s in family.samples])
        for family in text_string_to_metric_families(text.decode("utf-8"))
    ]


def both_paths(make_backend: Callable[[], object], hostname: str = "gpu-node-1",
               ) -> tuple[bytes, bytes]:
    """(generate_latest over a registry, exposition()) for two collectors over equal backends,
    each read once (a read counts field errors, so one collector read twice would differ)."""
    generic_collector = GpuCollector(make_backend(), hostname=hostname)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    registry.register(generic_collector)
    fast_collector = GpuCollector(make_backend(), hostname=hostname)  # type: ignore[arg-type]
    return generate_latest(registry), fast_collector.exposition()


def sim(gpus: int = 8, gpu_type: str = "H100-SXM5-80GB",
        drive: Callable[[SimulatedGpuBackend, ManualClock], None] | None = None,
        ) -> Callable[[], ScriptedBackend]:
    """A scripted backend replaying one sample of a simulation driven by `drive`."""
    clock = ManualClock()
    backend = SimulatedGpuBackend(gpus=gpus, gpu_type=gpu_type, hostname="gpu-node-1",
                                  clock=clock)
    if drive is not None:
        drive(backend, clock)
    samples = backend.sample()
    return lambda: ScriptedBackend(samples)


def loaded(backend: SimulatedGpuBackend, clock: ManualClock) -> None:
    backend.record_work(0.9, 0.8)
    clock.advance(600)


def xid(backend: SimulatedGpuBackend, clock: ManualClock) -> None:
    loaded(backend, clock)
    backend.inject_fault("xid", code=79, gpu=3)
    backend.inject_fault("xid", code=13, gpu=3)
    backend.inject_fault("xid", code=94, gpu=5)


def ecc(backend: SimulatedGpuBackend, clock: ManualClock) -> None:
    backend.inject_fault("ecc-dbe", gpu=0)
    backend.inject_fault("ecc-sbe", gpu=1)
    clock.advance(5)


def thermal(backend: SimulatedGpuBackend, clock: ManualClock) -> None:
    loaded(backend, clock)
    backend.inject_fault("thermal", gpu=2)
    clock.advance(120)


def cleared(backend: SimulatedGpuBackend, clock: ManualClock) -> None:
    xid(backend, clock)
    ecc(backend, clock)
    backend.clear_faults()
    clock.advance(60)


def mixed_boards() -> ScriptedBackend:
    h100 = SimulatedGpuBackend(gpus=2, hostname="a", clock=ManualClock()).sample()
    l4 = SimulatedGpuBackend(gpus=2, gpu_type="L4", hostname="b", clock=ManualClock()).sample()
    return ScriptedBackend(h100 + [dataclasses.replace(s, index=s.index + 2) for s in l4])


def field_errors() -> ScriptedBackend:
    return ScriptedBackend([
        gpu_sample(0, errors=("power_watts", "xid_last", "energy_consumed_millijoules"),
                   energy_consumed_millijoules=5, xid_last=79, xid_total={79: 1}),
        gpu_sample(1, errors=("memory_used_bytes",)),
        gpu_sample(2, errors=("memory_total_bytes", "throttle_reasons"), throttle_reasons=0x40),
        gpu_sample(3),
    ])


def hostile_labels() -> ScriptedBackend:
    return ScriptedBackend([
        gpu_sample(0, uuid='GPU-"quoted"\\back\nline', model_name="NVIDIA \u00e9\u6f22 {x=\"y\"}",
                   pci_bus_id="0000:00:00.0,evil=\"1\""),
    ])


def extreme_values() -> ScriptedBackend:
    return ScriptedBackend([
        gpu_sample(0, utilization_percent=math.nan, temperature_celsius=math.inf,
                   power_watts=-math.inf, sm_clock_mhz=1e20, memory_clock_mhz=-1e-7,
                   energy_consumed_millijoules=2**62, pcie_tx_kib=1_000_000,
                   pcie_rx_kib=999_999, nvlink_bandwidth_kib=12345678901,
                   memory_temperature_celsius=1234567.5, power_limit_watts=0.1 + 0.2,
                   row_remap_pending=True, row_remap_failure=False),
    ])


STATES: list[tuple[str, Callable[[], object]]] = [
    ("8 idle H100s", sim()),
    ("8 H100s after 10 minutes of load", sim(drive=loaded)),
    ("XIDs 79 and 13 on GPU 3, 94 on GPU 5", sim(drive=xid)),
    ("a double-bit ECC error on GPU 0, a single-bit one on GPU 1", sim(drive=ecc)),
    ("thermal slowdown on GPU 2", sim(drive=thermal)),
    ("faults cleared, totals kept", sim(drive=cleared)),
    ("4 L4s: no NVLink, no HBM temperature", sim(gpus=4, gpu_type="L4", drive=loaded)),
    ("2 H100s and 2 L4s in one box", mixed_boards),
    ("NVML field errors hide their series", field_errors),
    ("the backend raised", lambda: ScriptedBackend(RuntimeError("NVML_ERROR_GPU_IS_LOST"))),
    ("no GPUs", lambda: ScriptedBackend([])),
    ("quotes, backslashes, newlines and unicode in label values", hostile_labels),
    ("NaN, infinities, huge and tiny numbers", extreme_values),
]


@pytest.mark.parametrize(("state", "make_backend"), STATES, ids=[s for s, _ in STATES])
def test_the_fast_text_parses_identically_to_generate_latest(
    state: str, make_backend: Callable[[], object]
) -> None:
    generic, fast = both_paths(make_backend)
    assert parsed(fast) == parsed(generic)
    assert fast == generic  # stronger still: the very same bytes


def test_a_polling_collector_serves_the_same_text_both_ways() -> None:
    backend = SimulatedGpuBackend(gpus=8, hostname="h")
    backend.record_work(0.5, 0.5)
    backend.inject_fault("xid", code=79, gpu=1)
    collector = GpuCollector(backend, hostname="h", poll_interval_s=3600)
    try:
        registry = CollectorRegistry()
        registry.register(collector)
        assert collector.exposition() == generate_latest(registry)
    finally:
        collector.close()


def test_eight_simulated_gpus_export_at_least_forty_series_each() -> None:
    _, fast = both_paths(sim(drive=xid))
    per_gpu: dict[str, int] = {}
    for family in text_string_to_metric_families(fast.decode()):
        for sample in family.samples:
            if "gpu" in sample.labels:
                per_gpu[sample.labels["gpu"]] = per_gpu.get(sample.labels["gpu"], 0) + 1
    assert sorted(per_gpu) == [str(i) for i in range(8)]
    # 43 DCGM families + inferops_gpu_health + the node process's memory on an H100
    # (+ XID counters where XIDs happened)
    assert per_gpu["0"] == len(FIELDS) + 2 == 45
    assert per_gpu["3"] == 45 + 2 and per_gpu["5"] == 45 + 1


def test_the_one_off_function_and_the_object_agree() -> None:
    samples = [gpu_sample(0), gpu_sample(1, xid_last=79, xid_total={79: 1})]
    once = render_gpu_exposition(samples, "h", backend_name="nvml", sample_errors=2,
                                 field_errors={"power_watts": 3})
    renderer = GpuExposition("h")
    for _ in range(2):  # the second render reads the cached label strings
        assert renderer.render(samples, backend_name="nvml", sample_errors=2,
                               field_errors={"power_watts": 3}) == once
    assert b'inferops_gpu_field_errors_total{field="power_watts"} 3.0\n' in once
    assert b"inferops_gpu_sample_errors_total 2.0\n" in once
    assert b'inferops_gpu_health{UUID="GPU-00000001-0000-0000-0000-000000000000",gpu="1",' \
           b'reason="xid"} 0.0\n' in once
    assert render_gpu_exposition(None, "h", backend_name="sim").count(
        b"inferops_gpu_backend_up 0.0\n") == 1


# --- random samples ----------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_NUMBER = st.one_of(st.floats(), st.integers(-(2**40), 2**40).map(float))
_COUNT = st.integers(0, 2**63 - 1)
_OPTIONAL_FIELDS = {f.name: f.type for f in dataclasses.fields(GpuSample) if f.default is None}
_ERROR_NAMES = sorted({f.source for f in FIELDS} | {n for f in FIELDS for n in f.also_needs})


def _optional(type_text: str) -> st.SearchStrategy[object]:
    if "bool" in type_text:
        return st.none() | st.booleans()
    if "float" in type_text:
        return st.none() | _NUMBER
    return st.none() | _COUNT


@st.composite
def gpu_samples(draw: st.DrawFn, index: int) -> GpuSample:
    wider = {name: draw(_optional(str(kind))) for name, kind in _OPTIONAL_FIELDS.items()}
    return GpuSample(
        index=index, uuid=draw(_TEXT), pci_bus_id=draw(_TEXT), model_name=draw(_TEXT),
        utilization_percent=draw(_NUMBER), memory_used_bytes=draw(_COUNT),
        memory_total_bytes=draw(_COUNT), temperature_celsius=draw(_NUMBER),
        power_watts=draw(_NUMBER), sm_clock_mhz=draw(_NUMBER),
        memory_clock_mhz=draw(_NUMBER), xid_last=draw(st.integers(0, 255)),
        xid_total=draw(st.dictionaries(st.integers(1, 255), st.integers(1, 10**6), max_size=3)),
        ecc_sbe_volatile_total=draw(_COUNT), ecc_dbe_volatile_total=draw(_COUNT),
        throttle_reasons=draw(st.integers(0, 2**16)),
        errors=tuple(draw(st.lists(st.sampled_from(_ERROR_NAMES), max_size=4, unique=True))),
        **wider,  # type: ignore[arg-type]
    )


@st.composite
def gpu_boxes(draw: st.DrawFn) -> list[GpuSample]:
    count = draw(st.integers(0, 4))
    return [draw(gpu_samples(index)) for index in range(count)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=gpu_boxes(), hostname=_TEXT)
def test_random_samples_parse_identically_both_ways(samples: list[GpuSample],
                                                    hostname: str) -> None:
    generic, fast = both_paths(lambda: ScriptedBackend(samples), hostname=hostname)
    assert parsed(fast) == parsed(generic)
    assert fast == generic


# --- a real Prometheus's own checker -----------------------------------------------------

PROMTOOL = shutil.which("promtool")
DCGM_STYLE_LINTS = (
    # dcgm-exporter's names and labels, kept on purpose so existing dashboards work
    "label names should be written in 'snake_case' not 'camelCase'",  # modelName, UUID, ...
    'counter metrics should have "_total" suffix',  # DCGM_FI_DEV_PCIE_TX_THROUGHPUT, ...
    "metric name should not include type 'counter'",  # DCGM_FI_DEV_PCIE_REPLAY_COUNTER
)


def promtool_check(body: bytes) -> tuple[int, list[str]]:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                          timeout=60, check=False)
    return done.returncode, (done.stdout + done.stderr).decode().splitlines()


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian 'prometheus')")
@pytest.mark.parametrize(("state", "make_backend"), STATES[:9], ids=[s for s, _ in STATES[:9]])
def test_promtool_parses_the_fast_text_and_finds_only_dcgm_naming_style(
    state: str, make_backend: Callable[[], object]
) -> None:
    _, fast = both_paths(make_backend)
    code, lines = promtool_check(fast)
    # 1 = a parse error; 3 = parsed, with lint remarks; 0 = parsed and clean
    assert code in (0, 3), lines
    for line in lines:
        name, _, remark = line.partition(" ")
        assert name.startswith("DCGM_FI_DEV_") and remark in DCGM_STYLE_LINTS, line


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian 'prometheus')")
def test_promtool_does_reject_a_broken_body() -> None:
    _, fast = both_paths(sim())
    broken = fast.replace(b'gpu="0"', b'gpu="0', 1)
    code, lines = promtool_check(broken)
    assert code == 1 and any("parsing error" in line for line in lines), lines
