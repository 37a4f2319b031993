"""Reading SLO specs from YAML (see slo/examples/fleet-slos.yaml).

The native form::

    version: inferops/v1
    slos:
      - name: router-availability          # letters, digits, '.', '_', '-'; unique in the file
        description: Requests through the gateway that do not fail with a server error.
        objective: 0.99                    # a ratio in (0, 1): 99% -> 0.99
        window: 30d                        # rolling SLO window (Prometheus duration), default 30d
        # calendar: month                  # instead: the calendar month so far (UTC, natively)
        # min_events: 20                   # no burn-rate alert while the long window has fewer
        # group_by: [model_name]           # one SLO per model: statuses, ratios and alerts
        labels: {team: inference}          # optional, copied onto every generated rule
        sli:                               # one of ratio, latency, percentile, throughput, cost
                                           # (docs/slo.md; slo/_sli_loader.py)
          ratio:                           # error ratio = rate(bad) / rate(total)
            bad: http_requests_total{job="router",status="5xx"}
            total: http_requests_total{job="router"}
      - name: router-latency
        objective: 0.95
        sli:
          latency:                         # 1 - rate(bucket le=threshold) / rate(count)
            histogram: vllm:e2e_request_latency_seconds   # base name, without _bucket
            threshold: 2.5s                # a duration or seconds; a bucket bound, or give
            # buckets: [0.5, 1, 2.5, 5]    # the bounds to interpolate between them
            selector: '{job="router"}'     # optional label matchers

Every error names the file, the line and the field:
`slos.yaml:7: slos[0].objective: must be between 0 and 1 (exclusive), got 1.5`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ._exceptions import SloSpecError
from ._openslo import is_openslo, parse_openslo
from ._sli_loader import read_sli
from ._spec import DEFAULT_WINDOW_S, SloSpec
from ._yaml_fields import FieldPath, YamlFields

SPEC_VERSION = "inferops/v1"


def load_slo_specs(path: str | Path) -> list[SloSpec]:
    """The SLOs of one YAML file; `SloSpecError` when the file cannot be read or is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SloSpecError(
            f"cannot read SLO spec file: {error.strerror}", filename=str(path)
        ) from None
    return parse_slo_specs(text, filename=str(path))


def parse_slo_specs(text: str, *, filename: str = "<string>") -> list[SloSpec]:
    """The native form, or OpenSLO v1 documents (see `slo._openslo`) when the first
    document has an `apiVersion`."""
    try:
        documents = [doc for doc in yaml.compose_all(text, Loader=yaml.SafeLoader) if doc]
    except yaml.YAMLError:
        documents = []  # YamlFields reports it with its line
    if documents and is_openslo(documents[0]):
        return parse_openslo(documents, filename)
    fields = YamlFields(text, filename)
    top = fields.mapping(fields.root, (), required=("version", "slos"))
    version = fields.string(top["version"], ("version",))
    if version != SPEC_VERSION:
        raise fields.error(
            top["version"],
            ("version",),
            f"unsupported version {version!r} (expected {SPEC_VERSION})",
        )
    specs: list[SloSpec] = []
    first_line_of: dict[str, int] = {}
    for index, node in enumerate(fields.sequence(top["slos"], ("slos",), non_empty=True)):
        path: FieldPath = ("slos", index)
        spec = _read_spec(fields, node, path)
        try:
            spec.validate()
        except SloSpecError as error:
            field_path = (*path, *error.field.split("."))
            raise SloSpecError(
                error.reason,
                field=f"slos[{index}].{error.field}",
                filename=filename,
                line=fields.line_of(field_path),
            ) from None
        name_line = fields.line_of((*path, "name"))
        if spec.name in first_line_of:
            raise SloSpecError(
                f"duplicate SLO name {spec.name!r} "
                f"(first defined at line {first_line_of[spec.name]})",
                field=f"slos[{index}].name",
                filename=filename,
                line=name_line,
            )
        first_line_of[spec.name] = name_line
        specs.append(spec)
    return specs


def _read_spec(fields: YamlFields, node: yaml.Node, path: FieldPath) -> SloSpec:
    values = fields.mapping(
        node,
        path,
        required=("name", "objective", "sli"),
        optional=("description", "window", "labels", "min_events", "calendar", "group_by"),
    )
    return SloSpec(
        name=fields.string(values["name"], (*path, "name")),
        objective=fields.number(values["objective"], (*path, "objective")),
        sli=read_sli(fields, values["sli"], (*path, "sli")),
        window_s=(
            fields.duration(values["window"], (*path, "window"))
            if "window" in values
            else DEFAULT_WINDOW_S
        ),
        description=(
            fields.string(values["description"], (*path, "description"))
            if "description" in values
            else ""
        ),
        labels=(
            fields.string_map(values["labels"], (*path, "labels")) if "labels" in values else {}
        ),
        min_events=(
            fields.number(values["min_events"], (*path, "min_events"))
            if "min_events" in values
            else 0.0
        ),
        calendar=(
            fields.string(values["calendar"], (*path, "calendar")) if "calendar" in values else ""
        ),
        group_by=tuple(
            fields.string(label, (*path, "group_by", index))
            for index, label in enumerate(
                fields.sequence(values["group_by"], (*path, "group_by"))
                if "group_by" in values
                else []
            )
        ),
    )
