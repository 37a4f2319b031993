"""The cost page's numbers: GPU dollars per request and per 1k output tokens, per node and
per model, from the SLO's own cost definition (`slo.CostSli`).

No second formula: a node's GPU dollars per second is the SLI's own expression
(`dollars_per_second_expr`) over the SLI with its selectors narrowed to that node, its
request and token rates are the SLI's `sum(rate(...[slice]))` narrowed the same way, and a
model's cost is the sum of its nodes' dollars over the sum of their requests (or tokens).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from collectors import MetricSource
from slo import CostSli, dollars_per_second_expr, format_duration

from ._node_order import natural_sort_key
from ._rows import ChartSeries

NODE_LABEL = "node"
MODEL_LABEL = "model_name"

__all__ = ["CostReader", "CostRow", "narrowed"]


@dataclass(frozen=True, slots=True)
class CostRow:
    """One node (or one model, `node` None) now; `None` is "no data", never zero."""

    node: str | None
    model: str | None
    gpu_dollars_per_hour: float | None
    requests_per_s: float | None
    output_tokens_per_s: float | None
    dollars_per_request: float | None
    dollars_per_1k_output_tokens: float | None


def narrowed(vector_selector: str, label: str, value: str) -> str:
    """`metric{a="b"}` with `label="value"` added (`metric` alone gets braces)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    matcher = f'{label}="{escaped}"'
    text = vector_selector.strip()
    if "{" not in text:
        return f"{text}{{{matcher}}}"
    head, rest = text.split("{", 1)
    inside = rest.rsplit("}", 1)[0].strip().rstrip(",")
    return f"{head}{{{inside},{matcher}}}" if inside else f"{head}{{{matcher}}}"


def _per(dollars_per_s: float | None, units_per_s: float | None, scale: float) -> float | None:
    if dollars_per_s is None or units_per_s is None or units_per_s <= 0:
        return None
    return dollars_per_s / units_per_s * scale


class CostReader:
    """Reads the cost of every node the SLI's GPU series name, through a `MetricSource`."""

    def __init__(self, source: MetricSource, sli: CostSli) -> None:
        self._source = source
        self._sli = sli

    @property
    def sli(self) -> CostSli:
        return self._sli

    def _rate(self, vector_selector: str) -> str:
        return f"sum(rate({vector_selector}[{format_duration(self._sli.slice_s)}]))"

    def _scalar(self, expr: str, at_s: float) -> float | None:
        values = [s.value for s in self._source.query(expr, at_s) if not math.isnan(s.value)]
        return sum(values) if values else None

    def _nodes(self, at_s: float) -> dict[str, str | None]:
        """Node -> the model its requests are labelled with (None when unlabelled)."""
        nodes: dict[str, str | None] = {}
        for sample in self._source.query(f"count by ({NODE_LABEL}) ({self._sli.gpus})", at_s):
            node = sample.labels.get(NODE_LABEL)
            if node is not None:
                nodes[node] = None
        requests = f"count by ({NODE_LABEL}, {MODEL_LABEL}) ({self._sli.requests})"
        for sample in self._source.query(requests, at_s):
            node, model = sample.labels.get(NODE_LABEL), sample.labels.get(MODEL_LABEL)
            if node in nodes and model is not None:
                nodes[node] = model
        return nodes

    def node_rows(self, at_s: float) -> list[CostRow]:
        """One row per node, in natural order."""
        rows = []
        for node, model in sorted(self._nodes(at_s).items(), key=lambda i: natural_sort_key(i[0])):
            sli = dataclasses.replace(self._sli, gpus=narrowed(self._sli.gpus, NODE_LABEL, node))
            dollars_per_s = self._scalar(dollars_per_second_expr(sli), at_s)
            requests = self._scalar(self._rate(narrowed(sli.requests, NODE_LABEL, node)), at_s)
            tokens = (
                self._scalar(self._rate(narrowed(sli.output_tokens, NODE_LABEL, node)), at_s)
                if sli.output_tokens
                else None
            )
            rows.append(_row(node, model, dollars_per_s, requests, tokens))
        return rows

    def fleet_over_time(
        self, start_s: float, end_s: float, step_s: float
    ) -> tuple[list[ChartSeries], list[ChartSeries]]:
        """The whole fleet's dollars per request and per 1k output tokens over time: the
        SLI's own per-unit expressions as range queries."""
        dollars = dollars_per_second_expr(self._sli)
        per_request = f"({dollars}) / {self._rate(self._sli.requests)}"
        lines_request = [
            ChartSeries("fleet", line.timestamps_s, line.values)
            for line in self._source.query_range(per_request, start_s, end_s, step_s)
        ]
        lines_tokens: list[ChartSeries] = []
        if self._sli.output_tokens:
            per_tokens = f"({dollars}) / {self._rate(self._sli.output_tokens)} * 1000"
            lines_tokens = [
                ChartSeries("fleet", line.timestamps_s, line.values)
                for line in self._source.query_range(per_tokens, start_s, end_s, step_s)
            ]
        return lines_request, lines_tokens


def model_rows(nodes: Sequence[CostRow]) -> list[CostRow]:
    """Per model: its nodes' dollars summed over their requests (tokens) summed."""
    by_model: dict[str, list[CostRow]] = defaultdict(list)
    for row in nodes:
        if row.model is not None:
            by_model[row.model].append(row)
    result = []
    for model, rows in sorted(by_model.items()):
        result.append(
            _row(
                None,
                model,
                _total([row.gpu_dollars_per_hour for row in rows], 1 / 3600),
                _total([row.requests_per_s for row in rows], 1.0),
                _total([row.output_tokens_per_s for row in rows], 1.0),
            )
        )
    return result


def _total(values: Sequence[float | None], scale: float) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) * scale if known else None


def _row(
    node: str | None,
    model: str | None,
    dollars_per_s: float | None,
    requests_per_s: float | None,
    tokens_per_s: float | None,
) -> CostRow:
    return CostRow(
        node=node,
        model=model,
        gpu_dollars_per_hour=None if dollars_per_s is None else dollars_per_s * 3600,
        requests_per_s=requests_per_s,
        output_tokens_per_s=tokens_per_s,
        dollars_per_request=_per(dollars_per_s, requests_per_s, 1.0),
        dollars_per_1k_output_tokens=_per(dollars_per_s, tokens_per_s, 1000.0),
    )
