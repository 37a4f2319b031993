"""OpenSLO v1 `SLO` and `SLI` documents, the subset that maps onto InferOps' SLI kinds.

`load_slo_specs` reads a file in this form when its first document has an `apiVersion`.
Supported: `ratioMetric` (`counter: true`, `good` or `bad` with `total`, Prometheus queries
that are vector selectors, optionally wrapped in `sum(...)`) and `thresholdMetric`
(any PromQL giving one number); `budgetingMethod` `Occurrences` (a ratio SLI counts events,
a threshold SLI judges every evaluation) or `Timeslices` (judged per `timeSliceWindow`
against `timeSliceTarget`); one objective (`target` or `targetPercent`, `op`/`value` for a
threshold); `timeWindow` rolling (`28d`, `4w`) or calendar `1M` (UTC). The indicator inline
(`indicator`) or by name (`indicatorRef`, an `SLI` document of the same file). `Service`,
`DataSource`, `AlertPolicy`, `AlertCondition` and `AlertNotificationTarget` documents are
accepted and ignored. Errors name file, line and field (paths inside the document).
"""

from __future__ import annotations

import re

import yaml

from ._durations import parse_duration
from ._exceptions import SloSpecError
from ._promql import check_vector_selector
from ._spec import RatioSli, Sli, SloSpec
from ._timeslice_sli import THRESHOLD_OPS, ThresholdSli
from ._yaml_fields import FieldPath, YamlFields

API_VERSION = "openslo/v1"
IGNORED_KINDS = (
    "Service",
    "DataSource",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
)
_SUM = re.compile(r"\s*sum\s*\((?P<inner>.*)\)\s*", re.DOTALL)
_MINUTES = re.compile(r"\d+(?:\.\d+)?")


def is_openslo(root: yaml.Node) -> bool:
    return isinstance(root, yaml.MappingNode) and any(
        isinstance(key, yaml.ScalarNode) and key.value == "apiVersion" for key, _ in root.value
    )


def parse_openslo(documents: list[yaml.Node], filename: str) -> list[SloSpec]:
    indicators: dict[str, tuple[YamlFields, yaml.Node]] = {}
    slos: list[YamlFields] = []
    for root in documents:
        fields = YamlFields.of_document(root, filename)
        top = fields.mapping(root, (), required=("apiVersion", "kind", "metadata", "spec"))
        version = fields.string(top["apiVersion"], ("apiVersion",))
        if version != API_VERSION:
            raise fields.error(
                top["apiVersion"],
                ("apiVersion",),
                f"unsupported {version!r} (expected {API_VERSION})",
            )
        kind = fields.string(top["kind"], ("kind",))
        if kind == "SLI":
            name = _metadata_name(fields, top["metadata"])
            indicators[name] = (fields, top["spec"])
        elif kind == "SLO":
            slos.append(fields)
        elif kind not in IGNORED_KINDS:
            raise fields.error(
                top["kind"], ("kind",), f"unsupported kind {kind!r} (expected SLO or SLI)"
            )
    if not slos:
        raise SloSpecError("no document of kind SLO", filename=filename, line=1)
    specs: list[SloSpec] = []
    seen: set[str] = set()
    for fields in slos:
        spec = _read_slo(fields, indicators)
        if spec.name in seen:
            raise fields.error(fields.root, ("metadata", "name"), f"duplicate SLO {spec.name!r}")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def _metadata_name(fields: YamlFields, node: yaml.Node) -> str:
    metadata = fields.mapping(
        node, ("metadata",), required=("name",), optional=("displayName", "labels", "annotations")
    )
    return fields.string(metadata["name"], ("metadata", "name"))


def _read_slo(fields: YamlFields, indicators: dict[str, tuple[YamlFields, yaml.Node]]) -> SloSpec:
    top = fields.mapping(fields.root, (), required=("apiVersion", "kind", "metadata", "spec"))
    name = _metadata_name(fields, top["metadata"])
    path: FieldPath = ("spec",)
    spec = fields.mapping(
        top["spec"],
        path,
        required=("budgetingMethod", "objectives"),
        optional=(
            "description",
            "service",
            "indicator",
            "indicatorRef",
            "timeWindow",
            "alertPolicies",
        ),
    )
    method = fields.string(spec["budgetingMethod"], (*path, "budgetingMethod"))
    if method not in ("Occurrences", "Timeslices"):
        raise fields.error(
            spec["budgetingMethod"],
            (*path, "budgetingMethod"),
            f"must be Occurrences or Timeslices (RatioTimeslices is not supported), got {method!r}",
        )
    objectives = fields.sequence(spec["objectives"], (*path, "objectives"), non_empty=True)
    if len(objectives) != 1:
        raise fields.error(
            spec["objectives"], (*path, "objectives"), "must hold exactly one objective"
        )
    objective_path = (*path, "objectives", 0)
    objective = fields.mapping(
        objectives[0],
        objective_path,
        optional=(
            "displayName",
            "op",
            "value",
            "target",
            "targetPercent",
            "timeSliceTarget",
            "timeSliceWindow",
        ),
    )
    target = _target(fields, objectives[0], objective, objective_path)
    if ("indicator" in spec) == ("indicatorRef" in spec):
        raise fields.error(
            top["spec"], (*path, "indicator"), "must have exactly one of indicator or indicatorRef"
        )
    if "indicator" in spec:
        indicator = fields.mapping(
            spec["indicator"], (*path, "indicator"), required=("spec",), optional=("metadata",)
        )
        sli_fields, sli_node, sli_path = fields, indicator["spec"], (*path, "indicator", "spec")
    else:
        ref = fields.string(spec["indicatorRef"], (*path, "indicatorRef"))
        if ref not in indicators:
            known = ", ".join(sorted(indicators)) or "none"
            raise fields.error(
                spec["indicatorRef"],
                (*path, "indicatorRef"),
                f"no SLI document named {ref!r} in this file (SLIs: {known})",
            )
        sli_fields, sli_node = indicators[ref]
        sli_path = ("spec",)
    sli = _read_sli(sli_fields, sli_node, sli_path, method, fields, objective, objective_path)
    window_s, calendar = _window(fields, spec, path)
    labels = {}
    if "service" in spec:
        labels["service"] = fields.string(spec["service"], (*path, "service"))
    result = SloSpec(
        name=name,
        objective=target,
        sli=sli,
        window_s=window_s,
        description=(
            fields.string(spec["description"], (*path, "description"))
            if "description" in spec
            else ""
        ),
        labels=labels,
        calendar=calendar,
    )
    try:
        result.validate()
    except SloSpecError as error:
        raise SloSpecError(
            error.reason,
            field=f"{name}: {error.field}",
            filename=fields.filename,
            line=fields.root.start_mark.line + 1,
        ) from None
    return result


def _target(
    fields: YamlFields, node: yaml.Node, objective: dict[str, yaml.Node], path: FieldPath
) -> float:
    if ("target" in objective) == ("targetPercent" in objective):
        raise fields.error(node, (*path, "target"), "needs exactly one of target or targetPercent")
    if "target" in objective:
        return fields.number(objective["target"], (*path, "target"))
    return fields.number(objective["targetPercent"], (*path, "targetPercent")) / 100.0


def _window(fields: YamlFields, spec: dict[str, yaml.Node], path: FieldPath) -> tuple[float, str]:
    if "timeWindow" not in spec:
        return 30 * 86_400.0, ""
    window_path = (*path, "timeWindow")
    items = fields.sequence(spec["timeWindow"], window_path, non_empty=True)
    if len(items) != 1:
        raise fields.error(spec["timeWindow"], window_path, "must hold exactly one time window")
    item_path = (*window_path, 0)
    window = fields.mapping(
        items[0], item_path, required=("duration",), optional=("isRolling", "calendar")
    )
    duration = fields.string(window["duration"], (*item_path, "duration"))
    rolling = True
    if "isRolling" in window:
        rolling_node = window["isRolling"]
        if not isinstance(rolling_node, yaml.ScalarNode) or rolling_node.value not in (
            "true",
            "false",
        ):
            raise fields.error(rolling_node, (*item_path, "isRolling"), "must be true or false")
        rolling = rolling_node.value == "true"
    elif "calendar" in window:
        rolling = False
    if not rolling:
        if duration != "1M":
            raise fields.error(
                window["duration"],
                (*item_path, "duration"),
                f"a calendar window must be 1M (one calendar month, UTC), got {duration!r}",
            )
        if "calendar" in window:
            calendar = fields.mapping(
                window["calendar"], (*item_path, "calendar"), optional=("startTime", "timeZone")
            )
            if "timeZone" in calendar:
                zone = fields.string(calendar["timeZone"], (*item_path, "calendar", "timeZone"))
                if zone not in ("UTC", "Etc/UTC"):
                    raise fields.error(
                        calendar["timeZone"],
                        (*item_path, "calendar", "timeZone"),
                        f"calendar months are counted in UTC only, got {zone!r}",
                    )
        return 30 * 86_400.0, "month"  # Prometheus rules: rolling 30d
    try:
        return parse_duration(duration), ""
    except ValueError as error:
        raise fields.error(window["duration"], (*item_path, "duration"), str(error)) from None


def _read_sli(
    fields: YamlFields,
    node: yaml.Node,
    path: FieldPath,
    method: str,
    objective_fields: YamlFields,
    objective: dict[str, yaml.Node],
    objective_path: FieldPath,
) -> Sli:
    sli = fields.mapping(node, path, optional=("description", "thresholdMetric", "ratioMetric"))
    if ("thresholdMetric" in sli) == ("ratioMetric" in sli):
        raise fields.error(node, path, "must have exactly one of thresholdMetric or ratioMetric")
    slice_s = 60.0
    slice_target = None
    if method == "Timeslices":
        for key in ("timeSliceTarget", "timeSliceWindow"):
            if key not in objective:
                raise objective_fields.error(
                    objective_fields.root, (*objective_path, key), "required with Timeslices"
                )
        slice_target = objective_fields.number(
            objective["timeSliceTarget"], (*objective_path, "timeSliceTarget")
        )
        slice_s = _slice_window(
            objective_fields, objective["timeSliceWindow"], (*objective_path, "timeSliceWindow")
        )
    if "thresholdMetric" in sli:
        query = _query(fields, sli["thresholdMetric"], (*path, "thresholdMetric"), plain=False)
        for key in ("op", "value"):
            if key not in objective:
                raise objective_fields.error(
                    objective_fields.root, (*objective_path, key), "required with thresholdMetric"
                )
        op = objective_fields.string(objective["op"], (*objective_path, "op"))
        if op not in THRESHOLD_OPS:
            raise objective_fields.error(
                objective["op"],
                (*objective_path, "op"),
                f"must be one of {', '.join(THRESHOLD_OPS)}, got {op!r}",
            )
        value = objective_fields.number(objective["value"], (*objective_path, "value"))
        return ThresholdSli(query=query, op=op, value=value, slice_s=slice_s)
    ratio_path = (*path, "ratioMetric")
    ratio = fields.mapping(
        sli["ratioMetric"],
        ratio_path,
        required=("total",),
        optional=("counter", "good", "bad", "raw", "rawType"),
    )
    if "raw" in ratio:
        raise fields.error(ratio["raw"], (*ratio_path, "raw"), "raw ratios are not supported")
    counter = ratio.get("counter")
    if counter is None or not isinstance(counter, yaml.ScalarNode) or counter.value != "true":
        raise fields.error(
            counter if counter is not None else sli["ratioMetric"],
            (*ratio_path, "counter"),
            "must be true: the good/bad/total queries must be counters",
        )
    if ("good" in ratio) == ("bad" in ratio):
        raise fields.error(
            sli["ratioMetric"], (*ratio_path, "good"), "needs exactly one of good or bad"
        )
    counted_key = "good" if "good" in ratio else "bad"
    counted = _query(fields, ratio[counted_key], (*ratio_path, counted_key), plain=True)
    total = _query(fields, ratio["total"], (*ratio_path, "total"), plain=True)
    if slice_target is None:
        return RatioSli(
            bad="" if counted_key == "good" else counted,
            total=total,
            good=counted if counted_key == "good" else "",
        )
    window = f"{round(slice_s)}s"
    good = (
        f"sum(rate({counted}[{window}]))"
        if counted_key == "good"
        else f"(sum(rate({total}[{window}])) - sum(rate({counted}[{window}])))"
    )
    return ThresholdSli(
        query=f"{good} / sum(rate({total}[{window}]))",
        op="gte",
        value=slice_target,
        slice_s=slice_s,
    )


def _slice_window(fields: YamlFields, node: yaml.Node, path: FieldPath) -> float:
    if isinstance(node, yaml.ScalarNode) and _MINUTES.fullmatch(node.value):
        return float(node.value) * 60.0  # OpenSLO: a bare number is minutes
    return fields.duration(node, path)


def _query(fields: YamlFields, node: yaml.Node, path: FieldPath, *, plain: bool) -> str:
    metric = fields.mapping(node, path, required=("metricSource",))
    source_path = (*path, "metricSource")
    source = fields.mapping(
        metric["metricSource"],
        source_path,
        required=("spec",),
        optional=("type", "metricSourceRef"),
    )
    if "type" in source:
        kind = fields.string(source["type"], (*source_path, "type"))
        if kind.lower() != "prometheus":
            raise fields.error(
                source["type"],
                (*source_path, "type"),
                f"only Prometheus metric sources are supported, got {kind!r}",
            )
    spec_path = (*source_path, "spec")
    spec_node = source["spec"]
    if not isinstance(spec_node, yaml.MappingNode):
        raise fields.error(spec_node, spec_path, "must be a mapping with a PromQL query")
    query_node = next(
        (
            value
            for key, value in spec_node.value
            if isinstance(key, yaml.ScalarNode) and key.value == "query"
        ),
        None,
    )
    if query_node is None:
        raise fields.error(spec_node, (*spec_path, "query"), "required: a PromQL query")
    query = fields.string(query_node, (*spec_path, "query")).strip()
    if not plain:
        return query
    match = _SUM.fullmatch(query)
    inner = match["inner"].strip() if match else query
    problem = check_vector_selector(inner)
    if problem is not None:
        raise fields.error(
            query_node,
            (*spec_path, "query"),
            f"{problem} (a counter selector, optionally in sum(...), is what maps onto a ratio)",
        )
    return inner
