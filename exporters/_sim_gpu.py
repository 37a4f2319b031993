"""Simulated GPUs, driven by the work the node's real engine does.

Nothing here is random noise alone: utilisation follows the busy fraction the engine reports
through `record_work`, power follows utilisation, and the temperature follows power with
thermal inertia (a fast die lag plus a slow heatsink lag). Each is a first-order lag towards
its target, integrated in small exact steps between calls on an injectable monotonic clock,
so a test can drive minutes of GPU time in microseconds (that model: `_sim_gpu_physics`).
A small seeded jitter on power keeps a dashboard from looking painted on.

Readings are quantised the way NVML reports them: utilisation, temperature and clocks as
integers, power in milliwatts, memory in bytes.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
import uuid
from collections.abc import Callable

from ._gpu_sample import GpuProcess, GpuSample
from ._gpu_specs import GpuSpec, gpu_spec
from ._sim_gpu_physics import (
    IDLE_UTILIZATION_PERCENT,
    THERMAL_SLOWDOWN_CLOCK_RATIO,
    GpuState,
    advance,
    board_for,
)

# NVML clocks event (formerly "throttle") reason bits, as pynvml names them.
CLOCKS_EVENT_REASON_GPU_IDLE = 0x1  # nvmlClocksEventReasonGpuIdle
CLOCKS_EVENT_REASON_HW_THERMAL_SLOWDOWN = 0x40  # nvmlClocksEventReasonHwThermalSlowdown

BASE_MEMORY_FRACTION = 0.006
OWN_PROCESS = -1
"""`SimulatedGpuBackend(pid=OWN_PROCESS)` (the default): the current process's pid."""
"""Memory NVML shows as used with no process on the GPU (driver/context reserve)."""
POWER_JITTER_FRACTION = 0.003
XID_DOUBLE_BIT_ECC = 48
"""A double-bit ECC error is also reported by the driver as XID 48."""
SHUTDOWN_ABOVE_SLOWDOWN_C = 5.0
"""The GPU shuts down this far above its slowdown temperature (approximate)."""
HBM_ABOVE_HEATSINK_C = 3.0
"""HBM sits on the package: it follows the heatsink plus part of the die's rise."""
HBM_DIE_SHARE = 0.5
MEMORY_COPY_SHARE = 0.45
"""Inference decode is memory-bound: the memory interface is busy about this share of the
time the GPU is (NVML's memory utilisation)."""

FAULT_KINDS = ("ecc-dbe", "ecc-sbe", "thermal", "xid")


def simulated_uuid(hostname: str, index: int) -> str:
    """`GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, stable for a host and GPU index."""
    digest = hashlib.sha256(f"inferops-sim-gpu:{hostname}:{index}".encode()).digest()
    return f"GPU-{uuid.UUID(bytes=digest[:16])}"


def simulated_pci_bus_id(spec: GpuSpec, index: int) -> str:
    """NVML's `domain:bus:device.function` form, e.g. `00000000:18:00.0`."""
    buses = spec.pci_buses
    if index < len(buses):
        domain, bus = 0, buses[index]
    else:  # more GPUs than one server of this type holds: the next PCI domains
        domain, bus = index // len(buses), buses[index % len(buses)]
    return f"{domain:08X}:{bus:02X}:00.0"


class SimulatedGpuBackend:
    """`gpus` simulated GPUs of `gpu_type` on `hostname`; `name` is `sim`.

    `record_work(busy_fraction, memory_used_fraction)` is the node engine's report of how busy
    it kept the GPU(s) and how much device memory it holds; faults are injected with
    `inject_fault` and cleared with `clear_faults`. Thread-safe: the engine reports from its
    thread while a collector samples from another.

    `pid` is the process the simulated GPUs report as their one compute process, holding the
    memory the engine reported (what NVML's running-processes call shows for an inference
    server); by default the current process, the node that drives the simulation. None:
    no process is reported.
    """

    name = "sim"

    def __init__(
        self,
        *,
        gpus: int = 1,
        gpu_type: str = "H100-SXM5-80GB",
        hostname: str,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        pid: int | None = OWN_PROCESS,
    ) -> None:
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            raise ValueError(f"gpus must be a positive integer, got {gpus!r}")
        if not hostname:
            raise ValueError("hostname must not be empty")
        self.spec = gpu_spec(gpu_type)
        self._board = board_for(gpu_type)
        self.gpu_type = gpu_type
        self.hostname = hostname
        self.pid = os.getpid() if pid == OWN_PROCESS else pid
        self._clock = clock
        self._lock = threading.Lock()
        self._now = clock()
        self._gpus = [
            GpuState(
                index=i,
                uuid=simulated_uuid(hostname, i),
                pci_bus_id=simulated_pci_bus_id(self.spec, i),
                rng=random.Random(f"{seed}:{hostname}:{i}"),
                power_w=self.spec.idle_power_w,
                heatsink_c=self.spec.temp_idle_c,
            )
            for i in range(gpus)
        ]

    @property
    def gpus(self) -> int:
        return len(self._gpus)

    # -- driven by the engine -------------------------------------------------------------

    def record_work(
        self, busy_fraction: float, memory_used_fraction: float, *, gpu: int | None = None
    ) -> None:
        """From now on GPU(s) are busy `busy_fraction` of the time and hold that share of memory.

        `gpu=None` (the default) applies to every GPU of the node (a tensor-parallel engine);
        an index applies to that GPU alone. Fractions outside 0..1 raise ValueError.
        """
        busy = _fraction("busy_fraction", busy_fraction)
        memory = _fraction("memory_used_fraction", memory_used_fraction)
        with self._lock:
            self._advance()
            for state in self._selected(gpu):
                state.busy_target = busy
                state.memory_fraction = memory

    # -- faults ---------------------------------------------------------------------------

    def inject_fault(self, kind: str, *, gpu: int = 0, code: int | None = None) -> None:
        """Make GPU `gpu` misbehave as a real one does.

        - `xid` (needs `code`, e.g. 79 "GPU has fallen off the bus"): the driver reports that
          XID: the last-XID reading becomes `code` and the per-code total grows by one.
        - `ecc-dbe`: one more double-bit (uncorrectable) volatile ECC error, reported by the
          driver as XID 48 too; the GPU remaps the row, pending until a reset (clear_faults).
        - `ecc-sbe`: one more single-bit (corrected) volatile ECC error.
        - `thermal`: the cooling fails: the die heats towards slowdown temperature + 12 C
          with its thermal inertia; past the slowdown temperature the GPU sets the HW thermal
          slowdown reason (0x40) and halves its SM clock, until it has cooled 3 C below it.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown GPU fault kind {kind!r}; kinds: {', '.join(FAULT_KINDS)}")
        if kind == "xid":
            if isinstance(code, bool) or not isinstance(code, int) or code <= 0:
                raise ValueError(f"an xid fault needs code, a positive integer; got {code!r}")
        elif code is not None:
            raise ValueError(f"code applies to the xid fault only, not {kind!r}")
        with self._lock:
            self._advance()
            (state,) = self._selected(gpu)
            if kind == "xid":
                assert code is not None
                _record_xid(state, code)
            elif kind == "ecc-dbe":
                state.ecc_dbe += 1
                state.remapped_rows_uncorrectable += 1
                state.row_remap_pending = True
                _record_xid(state, XID_DOUBLE_BIT_ECC)
            elif kind == "ecc-sbe":
                state.ecc_sbe += 1
            else:
                state.thermal_fault = True

    def clear_faults(self) -> None:
        """The operator's fix: XID readings go back to 0 (as dcgm-exporter reports after a
        reset), a pending row remap is applied, cooling works again (the die cools with its
        inertia); error totals stay."""
        with self._lock:
            self._advance()
            for state in self._gpus:
                state.xid_last = 0
                state.row_remap_pending = False
                state.thermal_fault = False

    def active_faults(self) -> list[dict[str, object]]:
        """Faults still showing, e.g. `{"kind": "xid", "gpu": 0, "code": 79}`,
        `{"kind": "thermal", "gpu": 0}`."""
        with self._lock:
            faults: list[dict[str, object]] = []
            for state in self._gpus:
                if state.xid_last:
                    faults.append({"kind": "xid", "gpu": state.index, "code": state.xid_last})
                if state.thermal_fault:
                    faults.append({"kind": "thermal", "gpu": state.index})
            return faults

    # -- GpuBackend -----------------------------------------------------------------------

    def sample(self) -> list[GpuSample]:
        with self._lock:
            self._advance()
            return [self._sample(state) for state in self._gpus]

    def close(self) -> None:
        """Nothing to release."""

    # -- the state ------------------------------------------------------------------------

    def _selected(self, gpu: int | None) -> list[GpuState]:
        if gpu is None:
            return list(self._gpus)
        if isinstance(gpu, bool) or not isinstance(gpu, int) or not 0 <= gpu < len(self._gpus):
            raise ValueError(f"gpu must be an index in 0..{len(self._gpus) - 1}, got {gpu!r}")
        return [self._gpus[gpu]]

    def _advance(self) -> None:
        now = self._clock()
        elapsed = now - self._now
        if elapsed <= 0:
            return
        self._now = now
        advance(self._gpus, self.spec, self._board, elapsed)


    def _sample(self, state: GpuState) -> GpuSample:
        spec = self.spec
        idle = state.utilization < IDLE_UTILIZATION_PERCENT
        if idle:
            sm_clock = spec.sm_clock_idle_mhz
            mem_clock = spec.mem_clock_idle_mhz
        else:
            sm_clock = spec.sm_clock_max_mhz
            mem_clock = spec.mem_clock_max_mhz
        reasons = CLOCKS_EVENT_REASON_GPU_IDLE if idle else 0
        if state.throttled:
            sm_clock = min(sm_clock, round(spec.sm_clock_max_mhz * THERMAL_SLOWDOWN_CLOCK_RATIO))
            reasons |= CLOCKS_EVENT_REASON_HW_THERMAL_SLOWDOWN
        total = spec.memory_total_bytes
        base = BASE_MEMORY_FRACTION * total
        engine_bytes = int(state.memory_fraction * (total - base))
        used = int(base + state.memory_fraction * (total - base))
        jitter = state.rng.gauss(0.0, POWER_JITTER_FRACTION * spec.power_limit_w)
        power_mw = round(max(0.0, min(spec.power_limit_w, state.power_w + jitter)) * 1000)
        board = self._board
        nvlink = board.nvlink_links > 0
        return GpuSample(
            index=state.index,
            uuid=state.uuid,
            pci_bus_id=state.pci_bus_id,
            model_name=spec.model_name,
            utilization_percent=float(round(state.utilization)),
            memory_used_bytes=used,
            memory_total_bytes=total,
            temperature_celsius=float(round(state.temperature_c)),
            power_watts=power_mw / 1000,
            sm_clock_mhz=float(sm_clock),
            memory_clock_mhz=float(mem_clock),
            xid_last=state.xid_last,
            xid_total=dict(state.xid_total),
            ecc_sbe_volatile_total=state.ecc_sbe,
            ecc_dbe_volatile_total=state.ecc_dbe,
            throttle_reasons=reasons,
            memory_temperature_celsius=float(round(
                state.heatsink_c + HBM_DIE_SHARE * state.die_rise_c + HBM_ABOVE_HEATSINK_C
            )) if board.hbm else None,
            energy_consumed_millijoules=int(state.energy_mj),
            pcie_tx_kib=int(state.pcie_tx_kib),
            pcie_rx_kib=int(state.pcie_rx_kib),
            pcie_replays=0,
            memory_copy_utilization_percent=float(round(state.utilization * MEMORY_COPY_SHARE)),
            encoder_utilization_percent=0.0,
            decoder_utilization_percent=0.0,
            power_violation_us=0,
            thermal_violation_us=int(state.thermal_violation_us),
            sync_boost_violation_us=0,
            board_limit_violation_us=0,
            low_util_violation_us=int(state.low_util_violation_us),
            reliability_violation_us=0,
            ecc_sbe_aggregate_total=state.ecc_sbe,
            ecc_dbe_aggregate_total=state.ecc_dbe,
            nvlink_bandwidth_kib=int(state.nvlink_kib) if nvlink else None,
            nvlink_crc_flit_errors=0 if nvlink else None,
            nvlink_crc_data_errors=0 if nvlink else None,
            nvlink_replay_errors=0 if nvlink else None,
            nvlink_recovery_errors=0 if nvlink else None,
            remapped_rows_correctable=0,
            remapped_rows_uncorrectable=state.remapped_rows_uncorrectable,
            row_remap_pending=state.row_remap_pending,
            row_remap_failure=False,
            power_limit_watts=spec.power_limit_w,
            performance_state=0 if board.hbm or not idle else 8,
            slowdown_temperature_celsius=spec.slowdown_temp_c,
            shutdown_temperature_celsius=spec.slowdown_temp_c + SHUTDOWN_ABOVE_SLOWDOWN_C,
            pcie_link_generation=board.pcie_generation,
            pcie_link_width=16,
            processes=() if self.pid is None else (GpuProcess(self.pid, engine_bytes),),
        )


def _record_xid(state: GpuState, code: int) -> None:
    state.xid_last = code
    state.xid_total[code] = state.xid_total.get(code, 0) + 1


def _fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in 0..1, got {value!r}")
    return float(value)
