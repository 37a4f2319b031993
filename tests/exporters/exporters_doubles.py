"""Test helpers for the exporters package: a manual clock, scrapes, small backends."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from exporters import GpuSample


class ManualClock:
    """A monotonic clock a test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def parse(text: str) -> dict[str, Metric]:
    """Families by name, read back with prometheus_client's own text parser."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def scrape(url: str) -> tuple[str, dict[str, Metric]]:
    """GET the URL over real HTTP: (content type, parsed families)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        content_type = response.headers["Content-Type"]
        return content_type, parse(response.read().decode())


def values(families: Mapping[str, Metric], family: str, sample: str | None = None,
           ) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted label items: value} for the family's samples named `sample` (default: the
    family's own samples; the parser names a counter's `<family>_total`)."""
    name = sample or _own(families[family])
    return {
        tuple(sorted(s.labels.items())): s.value
        for s in families[family].samples
        if s.name == name
    }


def value(families: Mapping[str, Metric], family: str, sample: str | None = None,
          **labels: str) -> float:
    """The one sample of `family` whose labels include `labels`."""
    name = sample or _own(families[family])
    found = [s.value for s in families[family].samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples in {families[family].samples}"
    return found[0]


def _own(family: Metric) -> str:
    return family.name + "_total" if family.type == "counter" else family.name


def gpu_sample(index: int = 0, **overrides: object) -> GpuSample:
    fields: dict[str, object] = dict(
        index=index, uuid=f"GPU-0000000{index}-0000-0000-0000-000000000000",
        pci_bus_id=f"00000000:{0x18 + index:02X}:00.0", model_name="NVIDIA H100 80GB HBM3",
        utilization_percent=50.0, memory_used_bytes=1024 * 2**20,
        memory_total_bytes=81559 * 2**20, temperature_celsius=40.0, power_watts=300.5,
        sm_clock_mhz=1980.0, memory_clock_mhz=2619.0,
    )
    fields.update(overrides)
    return GpuSample(**fields)  # type: ignore[arg-type]


class ScriptedBackend:
    """A backend that returns (or raises) what the test sets, counting its samples."""

    name = "sim"

    def __init__(self, *results: list[GpuSample] | Exception) -> None:
        self.results = list(results)
        self.calls = 0
        self.closed = False

    def sample(self) -> list[GpuSample]:
        self.calls += 1
        result = self.results[min(self.calls, len(self.results)) - 1]
        if isinstance(result, Exception):
            raise result
        return result

    def close(self) -> None:
        self.closed = True


class BlockingBackend:
    """Samples once normally, then blocks in sample() until released (a hung NVML call)."""

    name = "nvml"

    def __init__(self, first: list[GpuSample], second: list[GpuSample]) -> None:
        self.first, self.second = first, second
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def sample(self) -> list[GpuSample]:
        self.calls += 1
        if self.calls == 1:
            return self.first
        self.entered.set()
        self.release.wait(10)
        return self.second

    def close(self) -> None:
        self.release.set()
