"""The one place that turns `settings.source` into the `MetricSource` every reader uses.

The control plane (SLO evaluator, alert engine), `inferops query`, `inferops slo status` and
the dashboard all read through it, so pointing `source` at a Prometheus moves them together.
"""

from __future__ import annotations

from collectors import MetricSource, PrometheusSource, SampleStore, StoreSource

from ._settings import Settings

__all__ = ["open_metric_source", "source_description"]


def open_metric_source(settings: Settings, store: SampleStore | None) -> MetricSource:
    """`StoreSource(store)` for `kind: store`, `PrometheusSource(url)` for `kind: prometheus`.

    `store` may be None only when the source is a Prometheus (nothing then opens the store).
    """
    if settings.source.kind == "prometheus":
        assert settings.source.url is not None  # the settings validator guarantees it
        return PrometheusSource(settings.source.url, timeout_s=settings.source.timeout)
    if store is None:
        raise ValueError("the embedded store source needs the SampleStore")
    return StoreSource(store)


def source_description(settings: Settings) -> str:
    """Where queries go, for start-up lines; a URL's credentials are never printed."""
    if settings.source.kind == "prometheus":
        return f"Prometheus {str(settings.source.url).split('@')[-1]}"
    return f"store {settings.store.url.split('@')[-1]}"
