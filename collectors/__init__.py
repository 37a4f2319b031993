"""Scrape Prometheus endpoints, store the samples, answer PromQL over them.

`Scraper` reads `ScrapeTarget`s on their intervals (httpx) and appends `ScrapedSample`s to a
`SampleStore` (SQLAlchemy: SQLite by default, PostgreSQL by URL; `open_database`).
`StoreSource` answers PromQL over the store with pandas; `PrometheusSource` answers the same
through a real Prometheus's HTTP API. Both are `MetricSource`s, so the SLO engine, the alert
engine and the dashboard never know which one they read.
"""

from ._database import open_database
from ._discovery import FileDiscovery, TargetGroup, parse_target_groups
from ._exceptions import CollectorError, DiscoveryError, ExpositionError, QueryError, StoreError
from ._exemplars import ExemplarSeries
from ._exposition import parse_exposition
from ._http_discovery import HttpDiscovery, parse_http_target_groups
from ._prometheus_source import PrometheusSource
from ._retention import CompactionResult, Retention
from ._sample import Exemplar, ScrapedSample
from ._scraper import Scraper, ScrapeResult, ScrapeTarget
from ._source import InstantSample, MetricSource, RangeSeries
from ._store import SampleStore
from ._store_source import StoreSource

__all__ = [
    "CollectorError",
    "CompactionResult",
    "DiscoveryError",
    "Exemplar",
    "ExemplarSeries",
    "ExpositionError",
    "FileDiscovery",
    "HttpDiscovery",
    "InstantSample",
    "MetricSource",
    "PrometheusSource",
    "QueryError",
    "RangeSeries",
    "Retention",
    "SampleStore",
    "ScrapeResult",
    "ScrapeTarget",
    "ScrapedSample",
    "Scraper",
    "StoreError",
    "StoreSource",
    "TargetGroup",
    "open_database",
    "parse_exposition",
    "parse_http_target_groups",
    "parse_target_groups",
]
