"""The simulated GPU physics: utilisation, power and temperature lags, and NVML's running totals."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ._gpu_specs import GpuSpec

__all__ = ["IDLE_UTILIZATION_PERCENT", "THERMAL_SLOWDOWN_CLOCK_RATIO", "GpuBoard", "GpuState",
           "advance", "board_for"]

UTILIZATION_TIME_CONSTANT_S = 0.5
"""NVML's utilisation is the share of the last 1/6 s..1 s with a kernel running."""
POWER_TIME_CONSTANT_S = 1.0
"""NVML's power reading is averaged over about a second."""
DIE_TIME_CONSTANT_S = 1.5
HEATSINK_TIME_CONSTANT_S = 20.0
DIE_SHARE = 0.6
"""Temperature is two lags: the die jumps most of the way within seconds (an H100 went from
36 C to 55 C in the first second of a full load, here), the heatsink brings the rest over
tens of seconds."""
THERMAL_FAULT_OVERSHOOT_C = 12.0
"""A cooling failure drives the GPU towards slowdown temperature + this, whatever the load."""
THERMAL_HYSTERESIS_C = 3.0
THERMAL_SLOWDOWN_CLOCK_RATIO = 0.5
"""Hardware thermal slowdown cuts the SM clock by at least half."""
IDLE_UTILIZATION_PERCENT = 0.5
_MAX_STEP_S = 0.25
PCIE_RX_KIB_PER_S = (64.0, 1_500_000.0)
PCIE_TX_KIB_PER_S = (32.0, 400_000.0)
"""(idle, at 100% busy) PCIe traffic: host-to-GPU (RX) inputs and weights pages, GPU-to-host
(TX) tokens and logits; approximate."""
NVLINK_SHARE_OF_PEAK = 0.15
"""Share of the NVLink peak a tensor-parallel engine uses while busy (all-reduces)."""


@dataclass(frozen=True)
class GpuBoard:
    """What a GPU type has beyond its GpuSpec: NVLink, the PCIe link, HBM or GDDR."""

    nvlink_links: int
    nvlink_kib_per_s_per_link: float
    pcie_generation: int
    hbm: bool


_SXM5 = GpuBoard(18, 25e9 / 1024, 5, True)  # NVLink 4: 18 links x 25 GB/s per direction
_BOARDS = {
    "H100-SXM5-80GB": _SXM5,
    "H200-SXM5-141GB": _SXM5,
    "A100-SXM4-80GB": GpuBoard(12, 25e9 / 1024, 4, True),  # NVLink 3
    "A10G": GpuBoard(0, 0.0, 4, False),
    "L4": GpuBoard(0, 0.0, 4, False),
}
_DEFAULT_BOARD = GpuBoard(0, 0.0, 4, False)
_MAX_STEPS = 4000


def board_for(gpu_type: str) -> GpuBoard:
    """The board of `gpu_type`; a type not listed has no NVLink, PCIe gen 4 and GDDR."""
    return _BOARDS.get(gpu_type, _DEFAULT_BOARD)


def _lag(value: float, target: float, dt: float, tau: float) -> float:
    """First-order lag towards `target` over `dt` seconds (exact for a constant target)."""
    return target + (value - target) * math.exp(-dt / tau)


@dataclass
class GpuState:
    index: int
    uuid: str
    pci_bus_id: str
    rng: random.Random
    busy_target: float = 0.0
    memory_fraction: float = 0.0
    utilization: float = 0.0
    power_w: float = 0.0
    heatsink_c: float = 0.0
    die_rise_c: float = 0.0
    throttled: bool = False
    thermal_fault: bool = False
    xid_last: int = 0
    xid_total: dict[int, int] = field(default_factory=dict)
    ecc_sbe: int = 0
    ecc_dbe: int = 0
    energy_mj: float = 0.0
    pcie_tx_kib: float = 0.0
    pcie_rx_kib: float = 0.0
    nvlink_kib: float = 0.0
    thermal_violation_us: float = 0.0
    low_util_violation_us: float = 0.0
    remapped_rows_uncorrectable: int = 0
    row_remap_pending: bool = False

    @property
    def temperature_c(self) -> float:
        return self.heatsink_c + self.die_rise_c


def advance(states: list[GpuState], spec: GpuSpec, board: GpuBoard, elapsed: float) -> None:
    """Integrate every GPU over `elapsed` (> 0) seconds in small exact steps."""
    steps = min(_MAX_STEPS, max(1, math.ceil(elapsed / _MAX_STEP_S)))
    dt = elapsed / steps
    for state in states:
        for _ in range(steps):
            _step(state, spec, board, dt)


def _step(state: GpuState, spec: GpuSpec, board: GpuBoard, dt: float) -> None:
    state.utilization = _lag(
        state.utilization, 100.0 * state.busy_target, dt, UTILIZATION_TIME_CONSTANT_S
    )
    clock_ratio = THERMAL_SLOWDOWN_CLOCK_RATIO if state.throttled else 1.0
    load_power = spec.power_limit_w * spec.load_power_fraction
    power_target = spec.idle_power_w + (load_power - spec.idle_power_w) * (
        state.utilization / 100.0
    ) * clock_ratio
    state.power_w = _lag(state.power_w, power_target, dt, POWER_TIME_CONSTANT_S)
    heat = (state.power_w - spec.idle_power_w) / (load_power - spec.idle_power_w)
    rise = (spec.temp_load_c - spec.temp_idle_c) * heat
    extra = 0.0  # a failed cooler heats the heatsink whatever the load
    if state.thermal_fault:
        extra = max(0.0, spec.slowdown_temp_c + THERMAL_FAULT_OVERSHOOT_C
                    - (spec.temp_idle_c + rise))
    state.die_rise_c = _lag(state.die_rise_c, DIE_SHARE * rise, dt, DIE_TIME_CONSTANT_S)
    state.heatsink_c = _lag(state.heatsink_c,
                            spec.temp_idle_c + (1 - DIE_SHARE) * rise + extra,
                            dt, HEATSINK_TIME_CONSTANT_S)
    _accumulate(state, board, dt)
    if state.temperature_c >= spec.slowdown_temp_c:
        state.throttled = True
    elif state.temperature_c < spec.slowdown_temp_c - THERMAL_HYSTERESIS_C:
        state.throttled = False


def _accumulate(state: GpuState, board: GpuBoard, dt: float) -> None:
    """The running totals NVML keeps: energy, PCIe and NVLink traffic, violation time."""
    busy = state.utilization / 100.0
    state.energy_mj += state.power_w * dt * 1000.0
    state.pcie_rx_kib += dt * (PCIE_RX_KIB_PER_S[0] + busy * PCIE_RX_KIB_PER_S[1])
    state.pcie_tx_kib += dt * (PCIE_TX_KIB_PER_S[0] + busy * PCIE_TX_KIB_PER_S[1])
    state.nvlink_kib += dt * busy * NVLINK_SHARE_OF_PEAK * (
        board.nvlink_links * board.nvlink_kib_per_s_per_link)
    if state.throttled:
        state.thermal_violation_us += dt * 1e6
    if state.utilization < IDLE_UTILIZATION_PERCENT:
        state.low_util_violation_us += dt * 1e6
