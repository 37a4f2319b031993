"""SLO status as recorded series (`slo:*:ratio`), written back into the store each round."""

from __future__ import annotations

from collections.abc import Sequence

from collectors import ScrapedSample
from slo import SloStatus, format_duration


def slo_status_samples(statuses: Sequence[SloStatus], at_s: float) -> list[ScrapedSample]:
    """SLO status as recorded series, so dashboards and queries read it like any metric."""
    samples: list[ScrapedSample] = []
    for status in statuses:
        labels = {**status.group, "slo": status.name}
        samples.append(ScrapedSample("slo:objective:ratio", labels, status.objective, at_s))
        if status.sli_value is not None:
            samples.append(ScrapedSample("slo:sli:ratio", labels, status.sli_value, at_s))
        if status.error_budget_remaining is not None:
            samples.append(
                ScrapedSample(
                    "slo:error_budget_remaining:ratio", labels, status.error_budget_remaining, at_s
                )
            )
        for window_s, burn_rate in sorted(status.burn_rates.items()):
            samples.append(
                ScrapedSample(
                    "slo:burn_rate:ratio",
                    {**labels, "window": format_duration(window_s)},
                    burn_rate,
                    at_s,
                )
            )
    return samples
