"""Published figures of the GPU types the simulation can stand in for.

Memory totals are what NVML reports as `total` (MiB) on these boards; power limits are the
default board power limits; clocks are the idle and maximum boost SM clocks and the memory
clock as nvidia-smi shows them; temperatures are typical die temperatures of an air/liquid
cooled datacenter node at idle and under sustained inference load, and the temperature at
which the GPU starts hardware thermal slowdown. Figures marked approximate are typical
values, not datasheet limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._exceptions import ExporterConfigError

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """One GPU type."""

    key: str
    """The name used on the command line (`--gpu-type`)."""
    model_name: str
    """What NVML's nvmlDeviceGetName reports, so dashboards read the same as on real GPUs."""
    memory_total_mib: int
    power_limit_w: float
    idle_power_w: float
    sm_clock_idle_mhz: int
    sm_clock_max_mhz: int
    mem_clock_idle_mhz: int
    mem_clock_max_mhz: int
    temp_idle_c: float
    temp_load_c: float
    """Steady die temperature at `load_power_fraction` of the power limit."""
    slowdown_temp_c: float
    """Hardware thermal slowdown starts here (approximate)."""
    pci_buses: tuple[int, ...]
    """PCI bus numbers of GPU 0, 1, ... on a typical server of this type."""
    load_power_fraction: float = 0.85
    """Share of the power limit drawn at 100% utilisation by an inference workload."""

    @property
    def memory_total_bytes(self) -> int:
        return self.memory_total_mib * MIB


_HGX_BUSES = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)  # HGX H100/H200 8-GPU baseboard
_DGX_A100_BUSES = (0x07, 0x0F, 0x47, 0x4E, 0x87, 0x90, 0xB7, 0xBD)
_PCIE_BUSES = (0x01, 0x21, 0x41, 0x61, 0x81, 0xA1, 0xC1, 0xE1)

GPU_SPECS: dict[str, GpuSpec] = {
    spec.key: spec
    for spec in (
        # idle power and SM clock as read from an H100 SXM5 through NVML (111.7 W, 390 MHz)
        GpuSpec("H100-SXM5-80GB", "NVIDIA H100 80GB HBM3", 81559, 700.0, 110.0,
                390, 1980, 2619, 2619, 33.0, 68.0, 87.0, _HGX_BUSES),
        GpuSpec("H200-SXM5-141GB", "NVIDIA H200", 143771, 700.0, 76.0,
                345, 1980, 3201, 3201, 31.0, 67.0, 87.0, _HGX_BUSES),
        GpuSpec("A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", 81920, 400.0, 58.0,
                210, 1410, 1593, 1593, 30.0, 64.0, 89.0, _DGX_A100_BUSES),
        GpuSpec("A10G", "NVIDIA A10G", 23028, 300.0, 25.0,
                210, 1710, 405, 6251, 30.0, 70.0, 88.0, _PCIE_BUSES),
        GpuSpec("L4", "NVIDIA L4", 23034, 72.0, 16.0,
                210, 2040, 405, 6251, 35.0, 74.0, 90.0, _PCIE_BUSES),
    )
}


def gpu_spec(key: str) -> GpuSpec:
    """The spec named `key`; ValueError naming the known types otherwise."""
    try:
        return GPU_SPECS[key]
    except KeyError:
        raise ExporterConfigError(
            f"unknown GPU type {key!r}; known types: {', '.join(sorted(GPU_SPECS))}"
        ) from None
