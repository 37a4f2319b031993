"""SimulatedGpuBackend: specs, identities, dynamics driven by record_work, faults."""

from __future__ import annotations

import math
import re

import pytest
from exporters_doubles import ManualClock

from exporters import GPU_SPECS, GpuBackend, GpuSample, SimulatedGpuBackend

MIB = 2**20


def sim(clock: ManualClock, **kwargs: object) -> SimulatedGpuBackend:
    return SimulatedGpuBackend(hostname="node-0", clock=clock, **kwargs)  # type: ignore[arg-type]


def one(backend: SimulatedGpuBackend, gpu: int = 0) -> GpuSample:
    return backend.sample()[gpu]


def test_is_a_gpu_backend_named_sim(clock: ManualClock) -> None:
    backend = sim(clock)
    assert isinstance(backend, GpuBackend)
    assert backend.name == "sim"


def test_idle_gpu_reads_like_an_idle_h100(clock: ManualClock) -> None:
    s = one(sim(clock))
    assert s.model_name == "NVIDIA H100 80GB HBM3"
    assert s.memory_total_bytes == 81559 * MIB
    assert s.utilization_percent == 0.0
    assert s.temperature_celsius == 33.0
    assert s.power_watts == pytest.approx(110.0, abs=10)  # as a real idle H100 read
    assert (s.sm_clock_mhz, s.memory_clock_mhz) == (390.0, 2619.0)
    assert s.throttle_reasons == 0x1  # nvmlClocksEventReasonGpuIdle
    assert s.memory_used_bytes == int(0.006 * 81559 * MIB)
    assert (s.xid_last, s.xid_total, s.ecc_sbe_volatile_total, s.ecc_dbe_volatile_total) == (
        0, {}, 0, 0)
    assert s.errors == ()


@pytest.mark.parametrize(("gpu_type", "model", "mib", "limit"), [
    ("H100-SXM5-80GB", "NVIDIA H100 80GB HBM3", 81559, 700.0),
    ("A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", 81920, 400.0),
    ("L4", "NVIDIA L4", 23034, 72.0),
])
def test_gpu_types(clock: ManualClock, gpu_type: str, model: str, mib: int, limit: float) -> None:
    backend = sim(clock, gpu_type=gpu_type)
    backend.record_work(1.0, 1.0)
    clock.advance(300)
    s = one(backend)
    assert (s.model_name, s.memory_total_bytes) == (model, mib * MIB)
    assert s.memory_used_bytes == mib * MIB
    assert s.power_watts <= limit
    assert s.power_watts == pytest.approx(0.85 * limit, rel=0.03)
    assert s.sm_clock_mhz == GPU_SPECS[gpu_type].sm_clock_max_mhz
    assert s.temperature_celsius == pytest.approx(GPU_SPECS[gpu_type].temp_load_c, abs=1)
    assert s.throttle_reasons == 0


def test_unknown_gpu_type_names_the_known_ones(clock: ManualClock) -> None:
    with pytest.raises(ValueError,
                       match=r"unknown GPU type 'H300'; known types: .*A100-SXM4-80GB.*L4"):
        sim(clock, gpu_type="H300")


def test_identities_are_deterministic_and_realistic(clock: ManualClock) -> None:
    first = sim(clock, gpus=3).sample()
    again = sim(clock, gpus=3).sample()
    other = SimulatedGpuBackend(gpus=3, hostname="node-1", clock=clock).sample()
    pattern = re.compile(r"^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    assert all(pattern.match(s.uuid) for s in first)
    assert [s.uuid for s in first] == [s.uuid for s in again]
    assert len({s.uuid for s in first} | {s.uuid for s in other}) == 6
    assert [s.pci_bus_id for s in first] == ["00000000:18:00.0", "00000000:2A:00.0",
                                             "00000000:3A:00.0"]
    assert [s.index for s in first] == [0, 1, 2]


def test_same_seed_same_readings(clock: ManualClock) -> None:
    a, b = sim(clock, seed=7), sim(clock, seed=7)
    for backend in (a, b):
        backend.record_work(0.6, 0.3)
    clock.advance(2.0)
    assert a.sample() == b.sample()


def test_utilisation_power_temperature_follow_record_work(clock: ManualClock) -> None:
    backend = sim(clock)
    backend.record_work(1.0, 0.5)
    memory = 0.006 * 81559 * MIB
    memory += 0.5 * (81559 * MIB - memory)

    clock.advance(0.5)  # one utilisation time constant
    s = one(backend)
    assert s.utilization_percent == round(100 * (1 - math.exp(-1)))  # 63
    assert s.memory_used_bytes == int(memory)  # allocations show at once
    assert 110 < s.power_watts < 350  # power lags utilisation
    assert 33 < s.temperature_celsius <= 37  # the die starts warming
    assert s.sm_clock_mhz == 1980 and s.throttle_reasons == 0

    clock.advance(4.5)
    s = one(backend)
    assert s.utilization_percent == 100
    assert s.power_watts == pytest.approx(595, abs=12)  # 0.85 x 700 W
    assert 45 < s.temperature_celsius < 60  # the die is hot, the heatsink still warming

    temperatures = []
    for _ in range(10):
        clock.advance(15)
        temperatures.append(one(backend).temperature_celsius)
    assert temperatures == sorted(temperatures)
    assert temperatures[-1] == 68.0  # the load temperature

    backend.record_work(0.0, 0.5)
    clock.advance(5)
    s = one(backend)
    assert s.utilization_percent == 0
    assert s.power_watts == pytest.approx(110, abs=12)
    assert 40 < s.temperature_celsius < 60  # the die cools fast, the heatsink slowly
    assert (s.sm_clock_mhz, s.throttle_reasons) == (390, 0x1)
    clock.advance(300)
    assert one(backend).temperature_celsius == 33.0


def test_partial_load_settles_in_between(clock: ManualClock) -> None:
    backend = sim(clock)
    backend.record_work(0.5, 0.1)
    clock.advance(600)
    s = one(backend)
    assert s.utilization_percent == 50
    assert s.power_watts == pytest.approx(110 + 0.5 * (595 - 110), abs=10)
    assert s.temperature_celsius == pytest.approx(33 + 0.5 * (68 - 33), abs=1)


def test_record_work_per_gpu_and_validation(clock: ManualClock) -> None:
    backend = sim(clock, gpus=2)
    backend.record_work(1.0, 0.9, gpu=1)
    clock.advance(10)
    idle, busy = backend.sample()
    assert (idle.utilization_percent, busy.utilization_percent) == (0, 100)
    with pytest.raises(ValueError, match="busy_fraction"):
        backend.record_work(1.5, 0.1)
    with pytest.raises(ValueError, match="memory_used_fraction"):
        backend.record_work(0.1, float("nan"))
    with pytest.raises(ValueError, match=r"gpu must be an index in 0..1"):
        backend.record_work(0.1, 0.1, gpu=2)
    with pytest.raises(ValueError, match="gpus"):
        sim(clock, gpus=0)


def test_xid_fault_and_clear(clock: ManualClock) -> None:
    backend = sim(clock, gpus=2)
    backend.inject_fault("xid", code=79)
    backend.inject_fault("xid", code=79)
    backend.inject_fault("xid", code=13, gpu=1)
    gpu0, gpu1 = backend.sample()
    assert (gpu0.xid_last, gpu0.xid_total) == (79, {79: 2})
    assert (gpu1.xid_last, gpu1.xid_total) == (13, {13: 1})
    assert backend.active_faults() == [{"kind": "xid", "gpu": 0, "code": 79},
                                       {"kind": "xid", "gpu": 1, "code": 13}]
    backend.clear_faults()
    gpu0, gpu1 = backend.sample()
    assert (gpu0.xid_last, gpu0.xid_total) == (0, {79: 2})  # totals stay
    assert (gpu1.xid_last, gpu1.xid_total) == (0, {13: 1})
    assert backend.active_faults() == []


def test_ecc_faults(clock: ManualClock) -> None:
    backend = sim(clock)
    backend.inject_fault("ecc-dbe")
    backend.inject_fault("ecc-sbe")
    backend.inject_fault("ecc-sbe")
    s = one(backend)
    assert (s.ecc_dbe_volatile_total, s.ecc_sbe_volatile_total) == (1, 2)
    assert (s.xid_last, s.xid_total) == (48, {48: 1})  # the driver reports a DBE as XID 48
    backend.clear_faults()
    s = one(backend)
    assert (s.ecc_dbe_volatile_total, s.ecc_sbe_volatile_total, s.xid_last) == (1, 2, 0)


def test_thermal_fault_heats_throttles_and_recovers(clock: ManualClock) -> None:
    backend = sim(clock)
    backend.record_work(0.9, 0.5)
    clock.advance(120)
    before = one(backend)
    assert before.throttle_reasons == 0 and before.sm_clock_mhz == 1980
    backend.inject_fault("thermal")
    assert backend.active_faults() == [{"kind": "thermal", "gpu": 0}]
    clock.advance(1)
    assert one(backend).throttle_reasons == 0  # inertia: not yet
    readings = []
    for _ in range(60):
        clock.advance(1)
        readings.append(one(backend))
    first = next(i for i, r in enumerate(readings) if r.throttle_reasons & 0x40)
    heating = [r.temperature_celsius for r in readings[:first]]
    assert heating == sorted(heating) and heating[-1] >= 86  # climbs to the slowdown point
    assert first >= 10  # thermal inertia: seconds, not at once
    hot = readings[-1]
    assert all(r.throttle_reasons & 0x40 for r in readings[-20:])  # the cooler is still dead
    assert hot.temperature_celsius > 87
    assert hot.throttle_reasons == 0x40  # nvmlClocksEventReasonHwThermalSlowdown
    assert hot.sm_clock_mhz == 990  # half of 1980
    assert hot.power_watts < before.power_watts  # slower clocks draw less

    backend.clear_faults()
    clock.advance(1)
    assert one(backend).throttle_reasons & 0x40  # still hot
    clock.advance(120)
    cooled = one(backend)
    assert cooled.throttle_reasons == 0 and cooled.sm_clock_mhz == 1980
    assert cooled.temperature_celsius < 84


def test_fault_validation(clock: ManualClock) -> None:
    backend = sim(clock)
    with pytest.raises(ValueError, match=r"unknown GPU fault kind 'fire'; "
                                         r"kinds: ecc-dbe, ecc-sbe, thermal, xid"):
        backend.inject_fault("fire")
    with pytest.raises(ValueError, match="xid fault needs code"):
        backend.inject_fault("xid")
    with pytest.raises(ValueError, match="code applies to the xid fault only"):
        backend.inject_fault("thermal", code=79)
    with pytest.raises(ValueError, match="gpu must be an index"):
        backend.inject_fault("xid", code=79, gpu=3)


def test_real_monotonic_clock_by_default() -> None:
    backend = SimulatedGpuBackend(hostname="h")
    backend.record_work(1.0, 0.2)
    assert len(backend.sample()) == 1
    backend.close()


# --- the wider dcgm-exporter fields ------------------------------------------------------


def test_an_idle_h100_has_nvlink_hbm_and_its_limits(clock: ManualClock) -> None:
    s = one(sim(clock))
    assert (s.power_limit_watts, s.slowdown_temperature_celsius,
            s.shutdown_temperature_celsius) == (700.0, 87.0, 92.0)
    assert (s.pcie_link_generation, s.pcie_link_width, s.performance_state) == (5, 16, 0)
    assert s.memory_temperature_celsius == 36.0  # HBM: heatsink (33) + 3
    assert (s.nvlink_bandwidth_kib, s.nvlink_crc_flit_errors, s.nvlink_crc_data_errors,
            s.nvlink_replay_errors, s.nvlink_recovery_errors) == (0, 0, 0, 0, 0)
    assert (s.energy_consumed_millijoules, s.pcie_tx_kib, s.pcie_rx_kib) == (0, 0, 0)
    assert (s.remapped_rows_correctable, s.remapped_rows_uncorrectable, s.row_remap_pending,
            s.row_remap_failure) == (0, 0, False, False)
    assert (s.encoder_utilization_percent, s.decoder_utilization_percent) == (0.0, 0.0)


def test_an_l4_has_neither_nvlink_nor_hbm_and_idles_in_p8(clock: ManualClock) -> None:
    s = one(sim(clock, gpu_type="L4"))
    assert (s.nvlink_bandwidth_kib, s.nvlink_crc_flit_errors) == (None, None)
    assert s.memory_temperature_celsius is None
    assert (s.pcie_link_generation, s.performance_state) == (4, 8)


def test_running_totals_follow_the_work(clock: ManualClock) -> None:
    backend = sim(clock)
    clock.advance(10)
    idle = one(backend)
    assert idle.energy_consumed_millijoules == pytest.approx(110.0 * 10 * 1000, rel=0.01)
    assert idle.low_util_violation_us == 10_000_000  # idle all along: clocks held down
    assert idle.pcie_rx_kib == 640 and idle.pcie_tx_kib == 320  # the idle trickle, KiB
    assert idle.nvlink_bandwidth_kib == 0
    backend.record_work(1.0, 0.5)
    clock.advance(100)
    busy = one(backend)
    # ~595 W for most of 100 s, about 1.5 GB/s in over PCIe, 15% of 450 GB/s over NVLink
    assert busy.energy_consumed_millijoules is not None
    assert 55_000_000 < busy.energy_consumed_millijoules - 1_100_000 < 60_000_000
    assert busy.pcie_rx_kib is not None and busy.pcie_rx_kib == pytest.approx(1.5e8, rel=0.02)
    assert busy.nvlink_bandwidth_kib == pytest.approx(0.15 * 18 * 25e9 / 1024 * 100, rel=0.02)
    assert busy.memory_copy_utilization_percent == 45.0  # memory-bound decode
    assert busy.low_util_violation_us is not None and busy.low_util_violation_us < 11_000_000


def test_thermal_slowdown_counts_violation_time(clock: ManualClock) -> None:
    backend = sim(clock)
    backend.record_work(0.8, 0.5)
    clock.advance(120)
    assert one(backend).thermal_violation_us == 0
    backend.inject_fault("thermal")
    clock.advance(60)
    throttled = one(backend).thermal_violation_us
    assert throttled is not None and 10_000_000 < throttled < 60_000_000


def test_a_double_bit_error_remaps_a_row_pending_until_the_reset(clock: ManualClock) -> None:
    backend = sim(clock, gpus=2)
    backend.inject_fault("ecc-dbe", gpu=1)
    s = one(backend, 1)
    assert (s.remapped_rows_uncorrectable, s.row_remap_pending) == (1, True)
    assert (s.ecc_dbe_aggregate_total, s.ecc_dbe_volatile_total) == (1, 1)
    assert one(backend, 0).row_remap_pending is False
    backend.clear_faults()
    s = one(backend, 1)
    assert (s.remapped_rows_uncorrectable, s.row_remap_pending) == (1, False)
