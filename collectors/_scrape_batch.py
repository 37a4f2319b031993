"""One scraped body turned into the batch to store: labelled samples and staleness markers.

Target labels are attached with `honor_labels: false` (a scraped label that collides is kept
as `exported_<name>`); samples without their own timestamp get the scrape's, and a series of
the previous scrape that is missing now gets a staleness marker.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Iterable, Mapping

from ._exceptions import ExpositionError
from ._exposition import KeyedSample, SampleLimitExceeded, parse_keyed_samples
from ._sample import FrozenLabels, ScrapedSample
from ._scrape_target import ScrapeFailed

logger = logging.getLogger("inferops.collectors.scraper")

_EXPORTED_PREFIX = "exported_"
_NAN = math.nan

SeriesKey = tuple[str, Hashable]
"""A series of one target: its name and the key of its label set's text in the exposition."""


def build_batch(
    body: bytes,
    content_type: str,
    timestamp: float,
    target_labels: dict[str, str],
    previous: Mapping[SeriesKey, tuple[str, dict[str, str]]],
    max_samples: int,
) -> tuple[list[ScrapedSample], dict[SeriesKey, tuple[str, dict[str, str]]], int]:
    """Parse and label one body (in a worker thread): the batch, its series, its size.

    `previous` is what the same target's previous scrape returned (same target labels):
    a series seen then reuses its labelled dict, so a steady scrape builds no label sets.
    """
    raw = parse_body(body, content_type, max_samples)
    target_names = frozenset(target_labels)
    batch: list[ScrapedSample] = []
    append = batch.append
    series: dict[SeriesKey, tuple[str, dict[str, str]]] = {}
    known = previous.get
    timestamped: set[tuple[SeriesKey, float]] = set()
    duplicates = 0
    for name, text_key, labels, value, ts, exemplar in raw:
        key: SeriesKey = (name, text_key)
        entry = known(key)
        if entry is None:
            if target_names.isdisjoint(labels) and "" not in labels.values():
                entry = (name, FrozenLabels({**labels, **target_labels}))
            else:
                entry = (name, FrozenLabels(merge_labels(labels, target_labels)))
        if ts is None:
            count = len(series)
            series.setdefault(key, entry)
            if len(series) == count:
                duplicates += 1
                continue
            append(ScrapedSample(name, entry[1], value, timestamp, False, exemplar))
        else:
            if (key, ts) in timestamped:
                duplicates += 1
                continue
            timestamped.add((key, ts))
            append(ScrapedSample(name, entry[1], value, ts, False, exemplar))
    if duplicates:
        logger.debug(
            "dropped %d duplicate samples (the first of each series was kept)", duplicates
        )
    if len(series) != len(previous) or not series.keys() >= previous.keys():
        batch.extend(
            stale_markers(
                (entry for key, entry in previous.items() if key not in series), timestamp
            )
        )
    return batch, series, len(raw)


def parse_body(body: bytes, content_type: str, max_samples: int) -> list[KeyedSample]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise ScrapeFailed(f"invalid exposition: line {line}: invalid UTF-8") from None
    media_type = content_type.partition(";")[0].strip().lower()
    openmetrics: bool | None = None
    if media_type == "application/openmetrics-text":
        openmetrics = True
    elif media_type == "text/plain":
        openmetrics = False
    try:
        return parse_keyed_samples(text, openmetrics=openmetrics, limit=max_samples)
    except SampleLimitExceeded as exc:
        raise ScrapeFailed(
            f"sample limit exceeded: more than {max_samples} samples (max_samples)",
            samples_scraped=exc.limit + 1,
        ) from None
    except ExpositionError as exc:
        raise ScrapeFailed(f"invalid exposition: {exc}") from None


def merge_labels(scraped: dict[str, str], target_labels: Mapping[str, str]) -> dict[str, str]:
    """Prometheus's honor_labels=false: target labels win, clashing scraped ones are renamed.

    Empty values count as absent (and are dropped); `target_labels` is sorted by name, and
    clashes are renamed shortest name first, adding `exported_` until the name is free.
    """
    labels = {name: value for name, value in scraped.items() if value}
    clashes: list[tuple[str, str]] = []
    for name, value in target_labels.items():
        existing = labels.get(name)
        if existing:
            clashes.append((name, existing))
        labels[name] = value
    clashes.sort(key=lambda clash: len(clash[0]))
    for name, value in clashes:
        new_name = name
        while True:
            new_name = _EXPORTED_PREFIX + new_name
            if not labels.get(new_name):
                labels[new_name] = value
                break
    return labels


def stale_markers(
    series: Iterable[tuple[str, dict[str, str]]], timestamp: float
) -> list[ScrapedSample]:
    return [ScrapedSample(name, labels, _NAN, timestamp, stale=True) for name, labels in series]
