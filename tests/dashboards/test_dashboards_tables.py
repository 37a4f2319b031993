"""The page's tables and figures: exact cell texts and CSS classes, missing data as a dash,
and how numbers and instants read."""

from __future__ import annotations

import math

import pytest
from dashboards_doubles import Row, as_json, table_headers, table_message, table_rows

from dashboards import (
    AlertRow,
    BurnRate,
    ChartKind,
    ChartSeries,
    FleetRow,
    Incident,
    IncidentEvent,
    NodeStatus,
    RemediationRow,
    SloAlert,
    SloRow,
)
from dashboards._display import (
    format_age,
    format_celsius,
    format_count,
    format_instant,
    format_memory,
    format_number,
    format_percent,
    format_ratio_percent,
    format_seconds,
    format_watts,
)
from dashboards._figures import chart_figure, message_figure
from dashboards._tables import (
    FLEET_COLUMNS,
    alerts_table,
    fleet_table,
    message_table,
    remediations_table,
    slo_table,
)
from dashboards._timelines import incident_blocks

DASH = "\N{EN DASH}"


def fleet_row(node: str, **values: object) -> FleetRow:
    fields: dict[str, object] = dict.fromkeys(
        ("up", "requests_per_s", "p50_s", "p99_s", "error_ratio", "gpu_util_percent", "queue",
         "kv_usage")
    )
    fields.update(values)
    return FleetRow(node=node, **fields)  # type: ignore[arg-type]


def blank_cells(node: str, status: str, **cells: tuple[str, str]) -> dict[str, tuple[str, str]]:
    """A fleet row's cells: the node, its status (classed), `cells`, and a dash elsewhere."""
    row = {key: (DASH, "") for key in (
        "requests_per_s", "p50_s", "p99_s", "ttft_p50_s", "ttft_p99_s", "error_ratio",
        "gpu_util_percent", "gpu_memory", "gpu_temperature_celsius", "gpu_power_watts",
        "queue", "kv_usage",
    )}
    return {"node": (node, ""), "status": (status, f"status-{status.split()[0]}"), **row,
            **cells}


GIB = 1024**3


def test_the_fleet_table_shows_each_node_with_units_and_classes() -> None:
    rows = [
        fleet_row("node-0", up=True, requests_per_s=10.0, p50_s=0.25, p99_s=1.5,
                  error_ratio=0.1, gpu_util_percent=87.4, queue=2.0, kv_usage=0.42,
                  status=NodeStatus.SERVING, ttft_p50_s=0.04, ttft_p99_s=0.12,
                  gpu_memory_used_bytes=41.25 * GIB, gpu_memory_total_bytes=80 * GIB,
                  gpu_temperature_celsius=67.4, gpu_power_watts=512.6),
        fleet_row("node-1", up=False, status=NodeStatus.DOWN),
        fleet_row("node-3", gpu_util_percent=12.0, gpu_memory_used_bytes=2 * GIB),
        fleet_row("node-4", up=True, status=NodeStatus.DRAINING, in_flight=3.0),
        fleet_row("node-5", up=True, status=NodeStatus.DRAINED, in_flight=0.0),
        fleet_row("node-10", up=True, requests_per_s=5.0, p99_s=math.inf, error_ratio=0.05,
                  queue=2.5, kv_usage=0.999, status=NodeStatus.SERVING),
    ]

    children = fleet_table(rows)

    assert table_headers(children) == [
        "Node", "Status", "Requests/s", "p50 latency", "p99 latency", "TTFT p50", "TTFT p99",
        "Errors", "GPU util", "GPU memory", "GPU temp", "Power", "Queued", "KV cache",
    ]
    assert table_rows(children) == [
        Row("node-0", "", blank_cells(
            "node-0", "serving", requests_per_s=("10.00", ""), p50_s=("250 ms", ""),
            p99_s=("1.50 s", ""), ttft_p50_s=("40 ms", ""), ttft_p99_s=("120 ms", ""),
            error_ratio=("10.0 %", "bad"), gpu_util_percent=("87 %", ""),
            gpu_memory=("41.2 / 80 GiB", ""), gpu_temperature_celsius=("67 \N{DEGREE SIGN}C", ""),
            gpu_power_watts=("513 W", ""), queue=("2", ""), kv_usage=("42 %", ""),
        )),
        Row("node-1", "row-down", blank_cells("node-1", "down")),
        Row("node-3", "", blank_cells(
            "node-3", "unknown", gpu_util_percent=("12 %", ""), gpu_memory=("2.0 GiB", ""),
        )),
        Row("node-4", "row-drained", blank_cells("node-4", "draining (3 in flight)")),
        Row("node-5", "row-drained", blank_cells("node-5", "drained")),
        Row("node-10", "", blank_cells(
            "node-10", "serving", requests_per_s=("5.00", ""),
            p99_s=("> largest bucket", ""), error_ratio=("5.0 %", ""), queue=("2.5", ""),
            kv_usage=("100 %", ""),
        )),
    ]


def test_an_empty_fleet_says_there_is_no_data_yet_across_the_whole_table() -> None:
    assert table_message(fleet_table([])) == ("no data yet", len(FLEET_COLUMNS))


def test_a_message_table_keeps_the_header_and_shows_the_message() -> None:
    children = message_table(FLEET_COLUMNS, "fleet data unavailable")
    assert table_headers(children)[0] == "Node"
    assert table_message(children) == ("fleet data unavailable", 14)


@pytest.mark.parametrize(
    ("budget", "text", "css_class"),
    [
        (0.5, "50.0 %", "good"),
        (0.25, "25.0 %", "good"),
        (0.1, "10.0 %", "warn"),
        (0.0, "0.0 %", "bad"),
        (-6.0, "-600.0 %", "bad"),
        (None, DASH, ""),
    ],
    ids=["half the budget left is good", "a quarter left is still good",
         "under a quarter left is a warning", "none left is bad", "overspent is bad",
         "no data has no class"],
)
def test_the_budget_cell_is_classed_by_how_much_is_left(
    budget: float | None, text: str, css_class: str
) -> None:
    [row] = table_rows(slo_table([SloRow("availability", 0.995, 0.99, budget)]))
    assert row.cells["error_budget_remaining_ratio"] == (text, css_class)


def test_the_slo_table_shows_sli_objective_and_burn_rates() -> None:
    rows = [
        SloRow("router-availability", 0.995, 0.99, 0.5,
               (BurnRate("5m", 14.4), BurnRate("1h", 2.0))),
        SloRow("router-latency", 0.97, 0.95, None, (BurnRate("1h", 0.5), BurnRate("6h", 1.0))),
        SloRow("batch", None, None, None),
    ]

    children = slo_table(rows)

    assert table_headers(children) == [
        "SLO", "SLI", "Objective", "Budget left", "Burn rates", "Alerts it drives",
    ]
    assert table_rows(children) == [
        Row("router-availability", "", {
            "slo": ("router-availability", ""), "sli_ratio": ("99.500 %", ""),
            "objective_ratio": ("99.0 %", ""), "error_budget_remaining_ratio": ("50.0 %", "good"),
            "burn_rates": ("5m: 14.40\N{MULTIPLICATION SIGN}  1h: 2.00\N{MULTIPLICATION SIGN}",
                           "warn"),
            "alerts": ("none seen yet", ""),
        }),
        Row("router-latency", "", {
            "slo": ("router-latency", ""), "sli_ratio": ("97.000 %", ""),
            "objective_ratio": ("95.0 %", ""), "error_budget_remaining_ratio": (DASH, ""),
            "burn_rates": ("1h: 0.50\N{MULTIPLICATION SIGN}  6h: 1.00\N{MULTIPLICATION SIGN}",
                           ""),
            "alerts": ("none seen yet", ""),
        }),
        Row("batch", "", {
            "slo": ("batch", ""), "sli_ratio": (DASH, ""), "objective_ratio": (DASH, ""),
            "error_budget_remaining_ratio": (DASH, ""), "burn_rates": (DASH, ""),
            "alerts": ("none seen yet", ""),
        }),
    ]


@pytest.mark.parametrize(
    ("driven", "text", "css_class"),
    [
        ({"availability": (SloAlert("ErrorBudgetBurn", "page", "firing"),
                           SloAlert("ErrorBudgetBurn", "ticket", "resolved"))},
         "ErrorBudgetBurn/page (firing), ErrorBudgetBurn/ticket (resolved)", "state-firing"),
        ({"availability": (SloAlert("ErrorBudgetBurn", None, "pending"),)},
         "ErrorBudgetBurn (pending)", "state-pending"),
        ({"availability": (SloAlert("ErrorBudgetBurn", "page", "resolved"),)},
         "ErrorBudgetBurn/page (resolved)", ""),
        ({"latency": (SloAlert("ErrorBudgetBurn", "page", "firing"),)}, "none seen yet", ""),
        (None, "unavailable", ""),
    ],
    ids=["a firing alert marks the SLO", "a pending one warns", "resolved only is quiet",
         "another SLO's alerts are not this one's", "an unreadable alert store says so"],
)
def test_the_slo_table_names_the_alerts_each_slo_drives(
    driven: dict[str, tuple[SloAlert, ...]] | None, text: str, css_class: str
) -> None:
    [row] = table_rows(slo_table([SloRow("availability", 0.995, 0.99, 0.5)], driven))
    assert row.cells["alerts"] == (text, css_class)


def test_the_alerts_table_shows_state_node_and_how_long_each_alert_lasted() -> None:
    rows = [
        AlertRow("NodeDown", "node-1", "page", "firing", "node-1 is down", 1_700_000_000.0,
                 1_700_000_010.0, None, "f1"),
        AlertRow("NodeDown", "node-1", "page", "resolved", "", 1_699_990_000.0,
                 1_699_990_010.0, 1_699_990_125.0, "f1"),
    ]

    children = alerts_table(rows, now_s=1_700_003_780.0)

    assert table_headers(children) == [
        "State", "Alert", "Node", "Severity", "Summary", "Active since (UTC)", "For",
        "Resolved (UTC)",
    ]
    assert table_rows(children) == [
        Row("f1@1700000000", "", {
            "state": ("firing", "state-firing"), "alertname": ("NodeDown", ""),
            "node": ("node-1", ""), "severity": ("page", ""), "summary": ("node-1 is down", ""),
            "active_at_s": ("2023-11-14 22:13:20", ""), "duration": ("1h 3m", ""),
            "resolved_at_s": (DASH, ""),
        }),
        Row("f1@1699990000", "", {
            "state": ("resolved", "state-resolved"), "alertname": ("NodeDown", ""),
            "node": ("node-1", ""), "severity": ("page", ""), "summary": (DASH, ""),
            "active_at_s": ("2023-11-14 19:26:40", ""), "duration": ("2m 5s", ""),
            "resolved_at_s": ("2023-11-14 19:28:45", ""),
        }),
    ]


def test_an_alert_without_node_or_severity_shows_dashes() -> None:
    [row] = table_rows(alerts_table(
        [AlertRow("SloBurn", None, None, "pending", "", 100.0, None, None, "p9")], now_s=145.0
    ))
    assert {key: row.cells[key] for key in ("state", "node", "severity", "duration")} == {
        "state": ("pending", "state-pending"), "node": (DASH, ""), "severity": (DASH, ""),
        "duration": ("45s", ""),
    }


def test_no_alerts_says_so() -> None:
    assert table_message(alerts_table([], 0.0)) == ("no alerts yet", 8)


def test_the_remediations_table_shows_outcome_guard_actor_and_reason() -> None:
    rows = [
        RemediationRow("2", "drain", "node-2", "refused", "draining node-2 would leave 0 nodes",
                       "disruption-budget", "cli:oncall", None, None, 1_700_000_000.0,
                       1_700_000_000.0),
        RemediationRow("1", "drain", "node-1", "succeeded", "node-1 is now drained", None,
                       "policy:drain-unhealthy-node", "NodeDown", "8e9b", 1_699_999_990.0,
                       None),
    ]

    children = remediations_table(rows)

    assert table_headers(children) == [
        "Started (UTC)", "Action", "Node", "Outcome", "Alert", "Actor", "Guard", "Reason",
    ]
    assert table_rows(children) == [
        Row("2", "", {
            "started_at_s": ("2023-11-14 22:13:20", ""), "action": ("drain", ""),
            "node": ("node-2", ""), "outcome": ("refused", "outcome-refused"),
            "alertname": (DASH, ""), "actor": ("cli:oncall", ""),
            "guard": ("disruption-budget", ""),
            "reason": ("draining node-2 would leave 0 nodes", ""),
        }),
        Row("1", "", {
            "started_at_s": ("2023-11-14 22:13:10", ""), "action": ("drain", ""),
            "node": ("node-1", ""), "outcome": ("succeeded", "outcome-succeeded"),
            "alertname": ("NodeDown", ""), "actor": ("policy:drain-unhealthy-node", ""),
            "guard": (DASH, ""), "reason": ("node-1 is now drained", ""),
        }),
    ]


def test_no_remediations_says_so() -> None:
    assert table_message(remediations_table([])) == ("no remediations yet", 8)


def test_incident_timelines_show_each_event_in_order_with_its_kind() -> None:
    blocks = as_json(incident_blocks([
        Incident("8e9b", "NodeHighErrorRate", "node-1", (
            IncidentEvent(1_700_000_000.0, "pending", "pending: node-1 fails 40%"),
            IncidentEvent(1_700_000_002.0, "firing", "fired: node-1 fails 40%"),
            IncidentEvent(1_700_000_003.0, "decision", "drain node-1 by engine: succeeded",
                          outcome="succeeded"),
        )),
        Incident("decision-7", None, "node-2", (
            IncidentEvent(1_699_000_000.0, "decision", "drain node-2 by cli: refused",
                          outcome="refused"),
        )),
    ]))

    assert [block["props"]["data-key"] for block in blocks] == ["8e9b", "decision-7"]
    heading = blocks[0]["props"]["children"][0]["props"]["children"]
    assert [span["props"]["children"] for span in heading] == [
        "NodeHighErrorRate", " on node-1", " since 2023-11-14 22:13:20 UTC",
    ]
    lines = [
        (li["props"]["data-kind"], li["props"]["className"],
         [span["props"]["children"] for span in li["props"]["children"]])
        for li in blocks[0]["props"]["children"][1]["props"]["children"]
    ]
    assert lines == [
        ("pending", "event-pending", ["2023-11-14 22:13:20", "pending: node-1 fails 40%"]),
        ("firing", "event-firing", ["2023-11-14 22:13:22", "fired: node-1 fails 40%"]),
        ("decision", "event-decision outcome-succeeded",
         ["2023-11-14 22:13:23", "drain node-1 by engine: succeeded"]),
    ]
    manual = blocks[1]["props"]["children"][0]["props"]["children"][0]["props"]["children"]
    assert manual == "manual action"


def test_no_incidents_says_so() -> None:
    assert as_json(incident_blocks([])) == [
        {"namespace": "dash_html_components", "props": {"children": "no incidents yet",
                                                        "className": "message"},
         "type": "P"}
    ]


# --- figures -------------------------------------------------------------------------------


def test_a_chart_draws_one_line_per_series_in_utc_with_gaps_for_missing_points() -> None:
    figure = as_json(chart_figure(ChartKind.LATENCY, [
        ChartSeries("node-1 p50", (1_700_000_000.0, 1_700_000_002.0), (0.2, math.nan)),
        ChartSeries("node-1 p99", (1_700_000_000.0,), (math.inf,)),
    ]))

    assert figure["data"] == [
        {"mode": "lines", "name": "node-1 p50", "x": ["2023-11-14T22:13:20",
                                                     "2023-11-14T22:13:22"],
         "y": [0.2, None], "line": {"dash": "dot"}, "type": "scatter"},
        {"mode": "lines", "name": "node-1 p99", "x": ["2023-11-14T22:13:20"], "y": [None],
         "type": "scatter"},
    ]
    assert figure["layout"]["title"]["text"] == "End-to-end latency p50 / p99"
    assert "annotations" not in figure["layout"]


@pytest.mark.parametrize(
    ("values", "y_range"),
    [((55.0, 80.0), [0, 100.0]), ((55.0, 120.0), [0, 120.0])],
    ids=["percent up to 100", "raised when a value goes past 100"],
)
def test_the_gpu_chart_keeps_a_percent_axis(
    values: tuple[float, ...], y_range: list[float]
) -> None:
    figure = as_json(chart_figure(ChartKind.GPU_UTILIZATION,
                                  [ChartSeries("node-0", (0.0, 2.0), values)]))
    assert figure["layout"]["yaxis"]["range"] == y_range


def test_an_empty_chart_says_no_data_yet_and_a_failed_one_says_why() -> None:
    empty = as_json(chart_figure(ChartKind.REQUEST_RATE, []))
    failed = as_json(message_figure(ChartKind.ERROR_RATIO, "chart unavailable (QueryError)"))

    assert (empty["data"], [a["text"] for a in empty["layout"]["annotations"]]) == (
        [], ["no data yet"]
    )
    assert [(a["text"], a["font"]["color"]) for a in failed["layout"]["annotations"]] == [
        ("chart unavailable (QueryError)", "#b00020")
    ]
    assert failed["layout"]["title"]["text"] == "Error ratio (5xx)"


# --- how values read -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formatted", "text"),
    [
        (format_memory(None, 80 * GIB), DASH), (format_memory(3 * GIB, None), "3.0 GiB"),
        (format_memory(1.5 * GIB, 0.0), "1.5 GiB"), (format_memory(79.96 * GIB, 80 * GIB),
                                                   "80.0 / 80 GiB"),
        (format_celsius(None), DASH), (format_celsius(84.5), "84 \N{DEGREE SIGN}C"),
        (format_watts(math.nan), DASH), (format_watts(699.5), "700 W"),
        (format_number(None), DASH), (format_number(math.nan), DASH),
        (format_number(math.inf), "+Inf"), (format_number(-math.inf), "-Inf"),
        (format_number(3.14159), "3.14"), (format_number(2.0, decimals=0), "2"),
        (format_count(3.0), "3"), (format_count(2.25), "2.2"), (format_count(None), DASH),
        (format_count(math.inf), "+Inf"),
        (format_seconds(0.0004), "0 ms"), (format_seconds(0.999), "999 ms"),
        (format_seconds(1.0), "1.00 s"), (format_seconds(12.345), "12.35 s"),
        (format_seconds(None), DASH), (format_seconds(math.inf), "> largest bucket"),
        (format_ratio_percent(0.99), "99.0 %"), (format_ratio_percent(0.12345, decimals=2),
                                                  "12.35 %"),
        (format_ratio_percent(math.nan), DASH), (format_percent(99.6), "100 %"),
        (format_percent(None), DASH),
        (format_instant(0.0), "1970-01-01 00:00:00"), (format_instant(None), DASH),
        (format_instant(math.nan), DASH),
        (format_age(45.4), "45s"), (format_age(125.0), "2m 5s"), (format_age(3_780.0), "1h 3m"),
        (format_age(187_200.0), "2d 4h"), (format_age(-5.0), "0s"), (format_age(None), DASH),
        (format_age(math.inf), DASH),
    ],
)
def test_values_read_as_an_engineer_expects(formatted: str, text: str) -> None:
    assert formatted == text
