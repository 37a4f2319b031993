"""The GPU families written straight to the Prometheus text format, without prometheus_client.

Why: prometheus_client's generic path builds a `Metric` and a `Sample` (a namedtuple with a
label dict) per series and sorts and escapes every label set on every scrape; for 8 GPUs x
44 series that costs milliseconds. Here the label string of each GPU is escaped and sorted
once and cached, the `# HELP`/`# TYPE` headers are built once at import, and a scrape is one
pass over the table in `_exposition_gpu_fields` with one join at the end.

The output is the very text `prometheus_client.generate_latest` writes for a registry holding
a `GpuCollector` over the same samples (same family order, label order, escaping and number
format), so it parses identically; the tests prove it over fixed states and random samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from ._exposition_gpu_fields import (
    BACKEND_INFO_HELP,
    BACKEND_INFO_NAME,
    BACKEND_UP_HELP,
    BACKEND_UP_NAME,
    FIELD_ERRORS_HELP,
    FIELD_ERRORS_NAME,
    FIELDS,
    HEALTH_HELP,
    HEALTH_NAME,
    PROCESS_MEMORY_HELP,
    PROCESS_MEMORY_NAME,
    SAMPLE_ERRORS_HELP,
    SAMPLE_ERRORS_NAME,
    XID_TOTAL_HELP,
    XID_TOTAL_NAME,
    GpuField,
    gpu_health,
)
from ._gpu_attribution import ProcessOwner
from ._gpu_sample import GpuSample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text format's content type, as prometheus_client's CONTENT_TYPE_LATEST."""

_LABEL_CACHE_LIMIT = 1024
"""GPUs whose label strings are kept; a box has at most 16, the limit only bounds memory."""


def _escape(value: str) -> str:
    """A label value as the text format escapes it (backslash, newline, double quote)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _header(name: str, documentation: str, kind: str) -> str:
    help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


def _format(value: float | int | bool) -> str:
    """Go's float format, as prometheus_client writes it (`1.0`, `1.2345678e+10`, `NaN`)."""
    kind = type(value)
    if kind is float and -1e6 < value < 1e6:  # the common case: repr is Go's form
        return repr(value)
    if kind is int and -1_000_000 < value < 1_000_000:
        return f"{value}.0"
    return _go_float(float(value))


def _go_float(value: float) -> str:
    """prometheus_client's `floatToGoString`: Go switches to exponents sooner than Python."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


_FIELD_ROWS: tuple[tuple[GpuField, str], ...] = tuple(
    (spec, _header(spec.name, spec.documentation, spec.kind)) for spec in FIELDS
)
# prometheus_client writes a counter `x` as `x_total`; the DCGM counters keep their own names
# (see _gpu_collector._ExactCounterName), InferOps' own counters get the suffix.
_XID_HEADER = _header(XID_TOTAL_NAME + "_total", XID_TOTAL_HELP, "counter")
_HEALTH_HEADER = _header(HEALTH_NAME, HEALTH_HELP, "gauge")
_PROCESS_HEADER = _header(PROCESS_MEMORY_NAME, PROCESS_MEMORY_HELP, "gauge")
_BACKEND_INFO_HEADER = _header(BACKEND_INFO_NAME, BACKEND_INFO_HELP, "gauge")
_BACKEND_UP_HEADER = _header(BACKEND_UP_NAME, BACKEND_UP_HELP, "gauge")
_SAMPLE_ERRORS_HEADER = _header(SAMPLE_ERRORS_NAME + "_total", SAMPLE_ERRORS_HELP, "counter")
_FIELD_ERRORS_HEADER = _header(FIELD_ERRORS_NAME + "_total", FIELD_ERRORS_HELP, "counter")


class GpuExposition:
    """Renders GPU samples of one host as Prometheus text; keep one per exporter, so each
    GPU's label strings are escaped once. Safe to call from several threads (the HTTP server's):
    the cache only ever holds immutable strings, and two threads filling it write equal ones.
    """

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self._hostname_label = f'Hostname="{_escape(hostname)}"'
        self._labels: dict[tuple[int, str, str, str], tuple[str, str]] = {}

    def _gpu_labels(self, sample: GpuSample) -> tuple[str, str]:
        """(`{...}` with the six DCGM labels, `UUID="..",gpu=".."` for InferOps' families)."""
        key = (sample.index, sample.uuid, sample.pci_bus_id, sample.model_name)
        cached = self._labels.get(key)
        if cached is None:
            uuid = _escape(sample.uuid)
            gpu = _escape(str(sample.index))
            # sorted by label name, as prometheus_client writes them
            dcgm = (f'{{Hostname="{_escape(self.hostname)}",UUID="{uuid}",'
                    f'device="nvidia{gpu}",gpu="{gpu}",'
                    f'modelName="{_escape(sample.model_name)}",'
                    f'pci_bus_id="{_escape(sample.pci_bus_id)}"}}')
            cached = (dcgm, f'UUID="{uuid}",gpu="{gpu}"')
            if len(self._labels) >= _LABEL_CACHE_LIMIT:
                self._labels.clear()
            self._labels[key] = cached
        return cached

    def render(
        self,
        samples: Sequence[GpuSample] | None,
        *,
        backend_name: str,
        sample_errors: int = 0,
        field_errors: Mapping[str, int] | None = None,
        owners: Mapping[int, ProcessOwner] | None = None,
    ) -> bytes:
        """The exposition of `samples` (None: the backend failed, `inferops_gpu_backend_up 0`).

        `sample_errors` and `field_errors` are the running totals the collector keeps;
        `owners` attributes GPU processes to nodes and models (pid -> owner).
        """
        gpus = [(sample, self._gpu_labels(sample)) for sample in samples or ()]
        out: list[str] = []
        append = out.append
        for spec, header in _FIELD_ROWS:
            append(header)
            name = spec.name
            source = spec.source
            also_needs = spec.also_needs
            read = spec.value
            for sample, (labels, _) in gpus:
                errors = sample.errors
                if errors and (source in errors or any(n in errors for n in also_needs)):
                    continue
                value = read(sample)
                if value is None:
                    continue
                append(f"{name}{labels} {_format(value)}\n")

        append(_XID_HEADER)
        for sample, (_, short) in gpus:
            for code, count in sorted(sample.xid_total.items()):
                append(f'{XID_TOTAL_NAME}_total{{{short},xid="{code}"}} {_format(count)}\n')

        append(_HEALTH_HEADER)
        for sample, (_, short) in gpus:
            healthy, reason = gpu_health(sample)
            append(f'{HEALTH_NAME}{{{short},reason="{reason}"}} {_format(healthy)}\n')

        append(_PROCESS_HEADER)
        hostname = self._hostname_label
        for sample, _ in gpus:
            if not sample.processes:
                continue
            uuid, gpu = f'UUID="{_escape(sample.uuid)}"', f'gpu="{sample.index}"'
            for process in sorted(sample.processes, key=lambda p: p.pid):
                owner = owners.get(process.pid) if owners else None
                node, model = (_escape(owner.node), _escape(owner.model_name)) if owner else (
                    "", "")
                append(f'{PROCESS_MEMORY_NAME}{{{hostname},{uuid},{gpu},model_name="{model}",'
                       f'node="{node}",pid="{process.pid}"}} '
                       f"{_format(process.memory_used_bytes)}\n")

        append(_BACKEND_INFO_HEADER)
        append(f'{BACKEND_INFO_NAME}{{backend="{_escape(backend_name)}"}} 1.0\n')
        append(_BACKEND_UP_HEADER)
        append(f"{BACKEND_UP_NAME} {'0.0' if samples is None else '1.0'}\n")
        append(_SAMPLE_ERRORS_HEADER)
        append(f"{SAMPLE_ERRORS_NAME}_total {_format(sample_errors)}\n")
        append(_FIELD_ERRORS_HEADER)
        for field_name, count in sorted((field_errors or {}).items()):
            append(f'{FIELD_ERRORS_NAME}_total{{field="{_escape(field_name)}"}} '
                   f"{_format(count)}\n")
        return "".join(out).encode("utf-8")


def render_gpu_exposition(
    samples: Iterable[GpuSample] | None,
    hostname: str,
    *,
    backend_name: str,
    sample_errors: int = 0,
    field_errors: Mapping[str, int] | None = None,
    owners: Mapping[int, ProcessOwner] | None = None,
) -> bytes:
    """One-off rendering (no label cache kept): for a caller that holds no `GpuExposition`."""
    return GpuExposition(hostname).render(
        None if samples is None else list(samples), backend_name=backend_name,
        sample_errors=sample_errors, field_errors=field_errors, owners=owners,
    )
