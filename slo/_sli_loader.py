"""Reading the `sli:` of a native spec: exactly one of ratio, latency, percentile, throughput
or cost (fields as in docs/slo.md)."""

from __future__ import annotations

import yaml

from ._spec import LatencySli, RatioSli, Sli
from ._timeslice_sli import DEFAULT_SLICE_S, CostSli, PercentileSli, ThroughputSli
from ._yaml_fields import FieldPath, YamlFields

SLI_KINDS = ("ratio", "latency", "percentile", "throughput", "cost")


def read_sli(fields: YamlFields, node: yaml.Node, path: FieldPath) -> Sli:
    kinds = fields.mapping(node, path, optional=SLI_KINDS)
    if len(kinds) != 1:
        found = " and ".join(kinds) if kinds else "none"
        raise fields.error(
            node, path, f"must have exactly one of {', '.join(SLI_KINDS)}, got {found}"
        )
    kind, value = next(iter(kinds.items()))
    kind_path = (*path, kind)
    if kind == "ratio":
        ratio = fields.mapping(value, kind_path, required=("bad", "total"))
        return RatioSli(
            bad=fields.string(ratio["bad"], (*kind_path, "bad")),
            total=fields.string(ratio["total"], (*kind_path, "total")),
        )
    if kind == "latency":
        return _read_latency(fields, value, kind_path)
    if kind == "percentile":
        return _read_percentile(fields, value, kind_path)
    if kind == "throughput":
        return _read_throughput(fields, value, kind_path)
    return _read_cost(fields, value, kind_path)


def _optional_string(
    fields: YamlFields, values: dict[str, yaml.Node], key: str, path: FieldPath
) -> str:
    return fields.string(values[key], (*path, key)) if key in values else ""


def _slice(fields: YamlFields, values: dict[str, yaml.Node], path: FieldPath) -> float:
    if "slice" not in values:
        return DEFAULT_SLICE_S
    return fields.duration(values["slice"], (*path, "slice"))


def _read_latency(fields: YamlFields, node: yaml.Node, path: FieldPath) -> LatencySli:
    values = fields.mapping(
        node, path, required=("histogram", "threshold"), optional=("selector", "buckets")
    )
    buckets: tuple[float, ...] = ()
    if "buckets" in values:
        buckets = tuple(
            fields.number(bound, (*path, "buckets", index))
            for index, bound in enumerate(
                fields.sequence(values["buckets"], (*path, "buckets"), non_empty=True)
            )
        )
    return LatencySli(
        histogram=fields.string(values["histogram"], (*path, "histogram")),
        threshold_s=fields.duration(
            values["threshold"], (*path, "threshold"), seconds_allowed=True
        ),
        selector=_optional_string(fields, values, "selector", path),
        buckets=buckets,
    )


def _read_percentile(fields: YamlFields, node: yaml.Node, path: FieldPath) -> PercentileSli:
    values = fields.mapping(
        node,
        path,
        required=("histogram", "quantile", "threshold"),
        optional=("selector", "slice"),
    )
    return PercentileSli(
        histogram=fields.string(values["histogram"], (*path, "histogram")),
        quantile=fields.number(values["quantile"], (*path, "quantile")),
        threshold_s=fields.duration(
            values["threshold"], (*path, "threshold"), seconds_allowed=True
        ),
        selector=_optional_string(fields, values, "selector", path),
        slice_s=_slice(fields, values, path),
    )


def _read_throughput(fields: YamlFields, node: yaml.Node, path: FieldPath) -> ThroughputSli:
    values = fields.mapping(
        node, path, required=("tokens", "demand", "min_tokens_per_s"), optional=("slice",)
    )
    return ThroughputSli(
        tokens=fields.string(values["tokens"], (*path, "tokens")),
        demand=fields.string(values["demand"], (*path, "demand")),
        min_tokens_per_s=fields.number(values["min_tokens_per_s"], (*path, "min_tokens_per_s")),
        slice_s=_slice(fields, values, path),
    )


def _read_cost(fields: YamlFields, node: yaml.Node, path: FieldPath) -> CostSli:
    values = fields.mapping(
        node,
        path,
        required=("gpus", "price_label", "gpu_hour_prices", "requests", "per", "max_dollars"),
        optional=("output_tokens", "slice"),
    )
    prices_path = (*path, "gpu_hour_prices")
    price_nodes = values["gpu_hour_prices"]
    if not isinstance(price_nodes, yaml.MappingNode):
        raise fields.error(price_nodes, prices_path, "must be a mapping of label value to price")
    prices: dict[str, float] = {}
    for key_node, value_node in price_nodes.value:
        key = fields.string(key_node, (*prices_path, str(key_node.value)))
        if key in prices:
            raise fields.error(key_node, (*prices_path, key), "repeated key")
        prices[key] = fields.number(value_node, (*prices_path, key))
    return CostSli(
        gpus=fields.string(values["gpus"], (*path, "gpus")),
        price_label=fields.string(values["price_label"], (*path, "price_label")),
        gpu_hour_prices=prices,
        requests=fields.string(values["requests"], (*path, "requests")),
        per=fields.string(values["per"], (*path, "per")),
        max_dollars=fields.number(values["max_dollars"], (*path, "max_dollars")),
        output_tokens=_optional_string(fields, values, "output_tokens", path),
        slice_s=_slice(fields, values, path),
    )
