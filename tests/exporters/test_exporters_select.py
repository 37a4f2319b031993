"""select_gpu_backend: nvml / sim / auto, and the log line that says which and why."""

from __future__ import annotations

import logging

import pytest

from exporters import (
    ExporterConfigError,
    GpuBackendUnavailable,
    NvmlGpuBackend,
    SimulatedGpuBackend,
    select_gpu_backend,
)


def _nvml_works() -> bool:
    try:
        NvmlGpuBackend("probe").close()
    except GpuBackendUnavailable:
        return False
    return True


NVML = _nvml_works()
no_gpu_here = pytest.mark.skipif(NVML, reason="NVML initialises on this machine")
gpu_here = pytest.mark.skipif(not NVML, reason="no NVIDIA driver/GPU on this machine")

NO_NVML = ("NVML is not available on this machine (libnvidia-ml.so.1 not found: no NVIDIA "
           "driver/GPU); use the sim backend (--backend sim / --gpu-backend sim) "
           "for simulated GPUs")


@no_gpu_here
def test_auto_falls_back_to_simulated_gpus_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="exporters"):
        backend = select_gpu_backend("auto", gpus=2, hostname="node-0")
    assert isinstance(backend, SimulatedGpuBackend)
    assert (backend.name, backend.gpus, backend.gpu_type) == ("sim", 2, "H100-SXM5-80GB")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("exporters", logging.INFO,
         "NVML unavailable (libnvidia-ml.so.1 not found: no NVIDIA driver/GPU); "
         "using 2 simulated H100-SXM5-80GB GPUs"),
    ]


@no_gpu_here
def test_nvml_fails_with_a_clear_message() -> None:
    with pytest.raises(GpuBackendUnavailable) as caught:
        select_gpu_backend("nvml", hostname="node-0")
    assert str(caught.value) == NO_NVML


@gpu_here
def test_auto_uses_nvml_on_a_gpu_machine(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="exporters"):
        backend = select_gpu_backend("auto", hostname="node-0")
    try:
        assert backend.name == "nvml"
        assert any("NVML initialised" in r.getMessage() for r in caplog.records)
    finally:
        backend.close()


def test_sim_as_asked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="exporters"):
        backend = select_gpu_backend("sim", gpu_type="L4", hostname="node-0")
    assert isinstance(backend, SimulatedGpuBackend)
    assert backend.sample()[0].model_name == "NVIDIA L4"
    assert [r.getMessage() for r in caplog.records] == [
        "GPU backend sim (as asked): 1 simulated L4 GPU"]


def test_unknown_kind_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown GPU backend 'cuda'; choices: auto, nvml, sim"
                       ) as caught:
        select_gpu_backend("cuda", hostname="h")
    assert isinstance(caught.value, ExporterConfigError)  # the CLI reports it, exit 2


@pytest.mark.parametrize("kind", ["auto", "sim"])
def test_unknown_gpu_type_fails_before_any_backend(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown GPU type 'B300'; known types:"):
        select_gpu_backend(kind, gpu_type="B300", hostname="h")
