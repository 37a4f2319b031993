"""`collectors.parse_exposition` against prometheus_client's own text parser.

Both parse the same ~2,000-sample vLLM-like + dcgm-like body (`_bodies.large_exposition`),
interleaved so that a busy machine slows both alike; the best of the rounds is reported.
"""

from __future__ import annotations

import statistics
import time

from prometheus_client.parser import text_string_to_metric_families

from collectors import parse_exposition

from ._bodies import large_exposition
from ._common import Options, Result, fmt_rate, rate

NAME = "exposition_parse"
DEFAULT_TIMESTAMP_S = 1_767_000_000.0


def _theirs(text: str) -> int:
    return sum(len(family.samples) for family in text_string_to_metric_families(text))


def _ours(text: str) -> int:
    return len(parse_exposition(text, default_timestamp_s=DEFAULT_TIMESTAMP_S))


def run(options: Options) -> Result:
    rounds = 7 if options.quick else 30
    text = large_exposition()
    ours_count, theirs_count = _ours(text), _theirs(text)
    ours_s: list[float] = []
    theirs_s: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        _ours(text)
        ours_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        _theirs(text)
        theirs_s.append(time.perf_counter() - started)
    ours_best = rate(ours_count, min(ours_s))
    theirs_best = rate(theirs_count, min(theirs_s))
    ours_median = rate(ours_count, statistics.median(ours_s))
    theirs_median = rate(theirs_count, statistics.median(theirs_s))
    return Result(
        params={"rounds": rounds, "body_bytes": len(text.encode()), "samples": ours_count},
        results={
            "parse_exposition_samples_per_s": ours_best,
            "prometheus_client_samples_per_s": theirs_best,
            "ratio": ours_best / theirs_best,
            "parse_exposition_samples_per_s_median": ours_median,
            "prometheus_client_samples_per_s_median": theirs_median,
            "ratio_median": ours_median / theirs_median,
            "prometheus_client_samples": theirs_count,
        },
        table=[
            ("body", f"{ours_count:,} samples, {len(text.encode()):,} bytes"),
            ("collectors.parse_exposition", fmt_rate(ours_best, "samples/s")),
            ("prometheus_client parser", fmt_rate(theirs_best, "samples/s")),
            ("ratio (best of rounds)", f"{ours_best / theirs_best:.1f}x"),
            ("ratio (median)", f"{ours_median / theirs_median:.1f}x"),
        ],
    )
