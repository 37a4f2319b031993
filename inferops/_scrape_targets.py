"""Prometheus `scrape_configs` (static and discovered) -> the scraper's targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from collectors import ScrapeTarget, TargetGroup

from ._settings import Settings


def scrape_targets(
    settings: Settings,
    discovered: Mapping[int, Sequence[TargetGroup]] | None = None,
) -> list[ScrapeTarget]:
    """Prometheus `scrape_configs` -> one `ScrapeTarget` per static or discovered target.

    `discovered` maps a job's index in `scrape_configs` to the target groups its
    `file_sd_configs` found; a group's `__scheme__` and `__metrics_path__` labels override
    the job's, as in Prometheus. A target listed twice in a job is scraped once.
    """
    targets: list[ScrapeTarget] = []
    for index, job in enumerate(settings.scrape_configs):
        interval = job.scrape_interval or settings.global_.scrape_interval
        timeout = min(job.scrape_timeout or settings.global_.scrape_timeout, interval)
        groups: list[tuple[Sequence[str], Mapping[str, str]]] = [
            (static.targets, static.labels) for static in job.static_configs
        ]
        groups.extend((group.targets, group.labels) for group in (discovered or {}).get(index, ()))
        for addresses, group_labels in groups:
            labels = {k: v for k, v in group_labels.items() if not k.startswith("__")}
            scheme = group_labels.get("__scheme__", job.scheme)
            path = group_labels.get("__metrics_path__", job.metrics_path)
            for address in addresses:
                targets.append(
                    ScrapeTarget(
                        job=job.job_name,
                        url=f"{scheme}://{address}{path}",
                        labels=labels,
                        interval_s=interval,
                        timeout_s=timeout,
                    )
                )
    return list(dict.fromkeys(targets))
