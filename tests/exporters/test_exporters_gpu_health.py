"""inferops_gpu_health: one series per GPU, 1 healthy or 0 with the reason."""

from __future__ import annotations

import pytest
from exporters_doubles import ManualClock, exposition, gpu_sample, parse, values
from prometheus_client import CollectorRegistry

from exporters import GpuCollector, GpuSample, SimulatedGpuBackend, gpu_health


@pytest.mark.parametrize(("sample", "expected"), [
    (gpu_sample(), (1, "none")),
    (gpu_sample(xid_last=79), (0, "xid")),
    (gpu_sample(xid_last=79, errors=("xid_last",)), (1, "none")),  # unreadable proves nothing
    (gpu_sample(row_remap_pending=True, row_remap_failure=False), (0, "ecc_dbe")),
    (gpu_sample(row_remap_pending=False, row_remap_failure=True), (0, "ecc_dbe")),
    # a remap already applied (after a reset): healthy again, the volatile DBE count stays
    (gpu_sample(ecc_dbe_volatile_total=1, row_remap_pending=False, row_remap_failure=False),
     (1, "none")),
    # a backend that cannot tell about row remapping: any volatile DBE counts
    (gpu_sample(ecc_dbe_volatile_total=1), (0, "ecc_dbe")),
    (gpu_sample(throttle_reasons=0x40), (0, "thermal")),  # HW thermal slowdown
    (gpu_sample(throttle_reasons=0x20), (0, "thermal")),  # SW thermal slowdown
    (gpu_sample(throttle_reasons=0x1 | 0x4), (1, "none")),  # idle, power cap: not unhealthy
    (gpu_sample(xid_last=48, row_remap_pending=True, throttle_reasons=0x40), (0, "xid")),
    (gpu_sample(row_remap_pending=True, throttle_reasons=0x40), (0, "ecc_dbe")),
])
def test_health_and_its_reason(sample: GpuSample, expected: tuple[int, str]) -> None:
    assert gpu_health(sample) == expected


def test_faults_show_in_the_health_series_and_clear(clock: ManualClock) -> None:
    backend = SimulatedGpuBackend(gpus=4, hostname="h", clock=clock)
    registry = CollectorRegistry()
    registry.register(GpuCollector(backend, hostname="h"))
    backend.record_work(0.8, 0.5)
    clock.advance(120)
    backend.inject_fault("xid", code=79, gpu=0)
    backend.inject_fault("ecc-dbe", gpu=1)
    backend.inject_fault("thermal", gpu=2)
    clock.advance(60)
    uuids = [s.uuid for s in backend.sample()]

    def health() -> dict[tuple[str, str], float]:
        found = values(parse(exposition(registry)), "inferops_gpu_health")
        assert all(dict(key)["UUID"] == uuids[int(dict(key)["gpu"])] for key in found)
        return {(dict(key)["gpu"], dict(key)["reason"]): v for key, v in found.items()}

    # GPU 1's DBE is reported as XID 48 too: the XID outranks the pending row remap
    assert health() == {("0", "xid"): 0.0, ("1", "xid"): 0.0, ("2", "thermal"): 0.0,
                        ("3", "none"): 1.0}
    backend.clear_faults()
    clock.advance(300)
    assert health() == {(str(i), "none"): 1.0 for i in range(4)}
