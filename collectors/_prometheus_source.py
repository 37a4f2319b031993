"""`PrometheusSource`: the `MetricSource` protocol over a real Prometheus's HTTP API."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import httpx

from ._exceptions import QueryError
from ._exemplars import ExemplarSeries
from ._sample import Exemplar
from ._source import InstantSample, RangeSeries


class PrometheusSource:
    """Asks `/api/v1/query` and `/api/v1/query_range` of the Prometheus at `base_url`.

    Expressions go in a form-encoded POST body (alert expressions can be long). Errors
    (Prometheus refusing the expression, an unreachable server, a timeout, an answer that
    is not Prometheus's JSON) raise `QueryError`, with Prometheus's own message when it gave
    one. A scalar result is one sample (one series for a range query) with no labels;
    results are sorted by their label sets, like the embedded `StoreSource`'s.
    `transport` is for tests (an `httpx.MockTransport`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        self._base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self._base_url, timeout=httpx.Timeout(timeout_s), transport=transport
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def query(self, expr: str, at_s: float) -> list[InstantSample]:
        data = self._post("/api/v1/query", {"query": expr, "time": _seconds(at_s)})
        result_type, result = data.get("resultType"), data.get("result")
        if result_type == "scalar":
            timestamp, value = _point(result)
            return [InstantSample(labels={}, value=value, timestamp_s=timestamp)]
        if result_type == "vector":
            samples = []
            for element in _list(result):
                timestamp, value = _point(element.get("value"))
                samples.append(
                    InstantSample(labels=_labels(element), value=value, timestamp_s=timestamp)
                )
            return sorted(samples, key=lambda s: sorted(s.labels.items()))
        if result_type == "matrix":
            raise QueryError(
                f"{expr!r} is a range vector: a query must give an instant vector or a scalar "
                "(apply a function such as rate() to it)"
            )
        raise QueryError(f"{expr!r} gives a {result_type} result: queries must give a number "
                         "or a vector")

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> list[RangeSeries]:
        data = self._post(
            "/api/v1/query_range",
            {
                "query": expr,
                "start": _seconds(start_s),
                "end": _seconds(end_s),
                "step": _seconds(step_s),
            },
        )
        if data.get("resultType") != "matrix":
            raise QueryError(f"Prometheus answered a {data.get('resultType')} to a range query")
        series = []
        for element in _list(data.get("result")):
            points = [_point(pair) for pair in _list(element.get("values"))]
            series.append(
                RangeSeries(
                    labels=_labels(element),
                    timestamps_s=tuple(t for t, _ in points),
                    values=tuple(v for _, v in points),
                )
            )
        return sorted(series, key=lambda s: sorted(s.labels.items()))

    def query_exemplars(self, expr: str, start_s: float, end_s: float) -> list[ExemplarSeries]:
        """`/api/v1/query_exemplars` (Prometheus with `--enable-feature=exemplar-storage`)."""
        data = self._post_any(
            "/api/v1/query_exemplars",
            {"query": expr, "start": _seconds(start_s), "end": _seconds(end_s)},
        )
        out = []
        for element in _list(data if data is not None else []):
            if not isinstance(element, dict) or not isinstance(element.get("seriesLabels"), dict):
                raise QueryError(f"unexpected Prometheus exemplar series {element!r:.200}")
            exemplars = []
            for item in _list(element.get("exemplars")):
                try:
                    exemplars.append(
                        Exemplar(
                            {str(k): str(v) for k, v in sorted(item["labels"].items())},
                            float(item["value"]),
                            float(item["timestamp"]),
                        )
                    )
                except (TypeError, ValueError, KeyError, AttributeError):
                    raise QueryError(f"unexpected Prometheus exemplar {item!r:.200}") from None
            labels = {str(k): str(v) for k, v in sorted(element["seriesLabels"].items())}
            out.append(
                ExemplarSeries(labels, tuple(sorted(exemplars, key=lambda e: e.timestamp_s or 0)))
            )
        return sorted(out, key=lambda one: sorted(one.series_labels.items()))

    def _post(self, path: str, form: Mapping[str, str]) -> dict[str, Any]:
        data = self._post_any(path, form)
        if not isinstance(data, dict):
            raise QueryError(f"{self._base_url}{path} answered without data: {data!r:.200}")
        return data

    def _post_any(self, path: str, form: Mapping[str, str]) -> Any:
        url = f"{self._base_url}{path}"
        try:
            response = self._client.post(path, data=dict(form))
        except httpx.TimeoutException:
            raise QueryError(f"Prometheus at {self._base_url} did not answer in time") from None
        except httpx.HTTPError as error:
            raise QueryError(f"cannot reach Prometheus at {self._base_url}: {error}") from None
        try:
            body = response.json()
        except ValueError:
            raise QueryError(
                f"{url} answered HTTP {response.status_code} without Prometheus's JSON: "
                f"{response.text[:200]!r}"
            ) from None
        if not isinstance(body, dict):
            raise QueryError(f"{url} answered JSON that is not Prometheus's: {body!r:.200}")
        if body.get("status") != "success":
            kind = body.get("errorType") or f"HTTP {response.status_code}"
            message = body.get("error") or "no error message"
            raise QueryError(f"Prometheus refused the query ({kind}): {message}")
        return body.get("data")


def _seconds(value: float) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise QueryError(f"times and steps must be finite numbers of seconds, got {value!r}")
    return repr(float(value))


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise QueryError(f"unexpected Prometheus answer: expected a list, got {value!r:.200}")
    return value


def _point(pair: Any) -> tuple[float, float]:
    """Prometheus's [unix seconds, "value"]; values are strings ("NaN", "+Inf" too)."""
    try:
        timestamp, value = pair
        return float(timestamp), float(value)
    except (TypeError, ValueError):
        raise QueryError(f"unexpected Prometheus sample {pair!r:.200}") from None


def _labels(element: Any) -> dict[str, str]:
    metric = element.get("metric") if isinstance(element, dict) else None
    if not isinstance(metric, dict):
        raise QueryError(f"unexpected Prometheus series {element!r:.200}")
    return {str(k): str(v) for k, v in sorted(metric.items())}
