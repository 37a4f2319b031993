"""`create_app`: the page and its refresh callbacks, driven through Dash's own HTTP endpoints
(`/_dash-dependencies`, `/_dash-update-component`) exactly as the browser drives them; and
`DashboardServer` serving it over real HTTP."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import dash
import httpx
import pytest
from dashboards_doubles import (
    Alert,
    AlertBook,
    Decision,
    DecisionBook,
    Row,
    ScriptedSource,
    SetClock,
    as_json,
    sample,
    series,
    table_message,
    table_rows,
)
from flask.testing import FlaskClient

from dashboards import (
    DashboardArgumentError,
    DashboardData,
    DashboardServer,
    ElementId,
    create_app,
)
from dashboards import _queries as q
from dashboards._pages import PAGE_HIDDEN, PAGE_SHOWN

NOW_S = 1_700_000_000.0
DASH = "\N{EN DASH}"
TICK = (ElementId.REFRESH, "n_intervals")
RANGE = (ElementId.TIME_RANGE, "value")


class Page:
    """The browser's side of the callback protocol, over Flask's test client."""

    def __init__(self, app: dash.Dash) -> None:
        self.client: FlaskClient = app.server.test_client()
        response = self.client.get("/_dash-dependencies")
        assert response.status_code == 200
        self.dependencies: list[dict[str, Any]] = response.get_json()

    def update(self, *outputs: tuple[str, str], **values: Any) -> dict[str, dict[str, Any]]:
        """Fire the callback that has `outputs` (among others) after the interval ticked, on
        its page shown; `values` sets inputs by element id (`time_range="1h"`,
        `page_fleet="page-view hidden"`). Returns `{element id: {property: value}}` for
        every output of that callback (`@hash` suffixes of shared outputs dropped)."""
        wanted = {f"{i}.{p}" for i, p in outputs}
        [dependency] = [
            d for d in self.dependencies
            if wanted <= {o.split("@")[0] for o in split_outputs(d["output"])}
        ]
        shaped = [
            {"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
            for o in split_outputs(dependency["output"])
        ]
        defaults = {"n_intervals": 1, "className": PAGE_SHOWN}
        inputs, state = (
            [
                {**spec, "value": values.get(spec["id"].replace("-", "_"),
                                             defaults.get(spec["property"]))}
                for spec in dependency[kind]
            ]
            for kind in ("inputs", "state")
        )
        body = {
            "output": dependency["output"],
            "outputs": shaped[0] if len(shaped) == 1 else shaped,
            "inputs": inputs,
            "changedPropIds": [f"{TICK[0]}.{TICK[1]}"],
            "state": state,
        }
        response = self.client.post("/_dash-update-component", json=body)
        if response.status_code == 204:  # PreventUpdate: the page is not shown
            return {}
        assert response.status_code == 200, response.get_data(as_text=True)
        answer: dict[str, Any] = response.get_json()
        assert answer["multi"] is True
        return {
            element: {prop.split("@")[0]: value for prop, value in props.items()}
            for element, props in answer["response"].items()
        }


def split_outputs(output: str) -> list[str]:
    """Dash's output string: `id.prop`, or `..id.prop...id.prop..` for several."""
    if output.startswith(".."):
        return output[2:-2].split("...")
    return [output]


FLEET_QUERIES = {
    q.NODE_UP: [sample(1, node="node-0"), sample(0, node="node-1"), sample(1, node="node-2")],
    q.request_rate_by_status(30.0): [sample(9.0, node="node-0", status="2xx"),
                                     sample(1.0, node="node-0", status="5xx")],
    q.latency_quantile(0.5, 30.0): [sample(0.25, node="node-0")],
    q.latency_quantile(0.99, 30.0): [sample(1.5, node="node-0")],
    q.GPU_UTIL_PERCENT: [sample(87.4, node="node-0")],
    q.QUEUED_REQUESTS: [sample(0.0, node="node-0")],
    q.KV_CACHE_USAGE: [sample(0.42, node="node-0")],
    q.ttft_quantile(0.5, 30.0): [sample(0.05, node="node-0")],
    q.ttft_quantile(0.99, 30.0): [sample(0.2, node="node-0")],
    q.GPU_TEMPERATURE_CELSIUS: [sample(61.0, node="node-0")],
    q.GPU_POWER_WATTS: [sample(300.0, node="node-0")],
    q.GPU_MEMORY_USED_MIB: [sample(1_024.0, node="node-0")],
    q.GPU_MEMORY_FREE_MIB: [sample(3_072.0, node="node-0")],
    q.ROUTER_NODE_DRAINING: [sample(0, node="node-0"), sample(1, node="node-1"),
                             sample(1, node="node-2")],
    q.ROUTER_NODE_HEALTHY: [sample(1, node="node-0"), sample(0, node="node-1"),
                            sample(1, node="node-2")],
    q.ROUTER_IN_FLIGHT: [sample(0, node="node-0"), sample(0, node="node-1"),
                         sample(0, node="node-2")],
    q.SLO_SLI: [sample(0.9, slo="router-availability")],
    q.SLO_OBJECTIVE: [sample(0.99, slo="router-availability")],
    q.SLO_BUDGET_REMAINING: [sample(-9.0, slo="router-availability")],
    q.SLO_BURN_RATE: [sample(10.0, slo="router-availability", window="5m")],
}


@pytest.fixture(scope="module")
def source() -> ScriptedSource:
    return ScriptedSource(FLEET_QUERIES, {
        q.request_rate(30.0): [series([NOW_S - 2, NOW_S], [3.0, 4.0], node="node-0")],
        q.request_rate(90.0): [],
        q.SLO_BUDGET_REMAINING: [series([NOW_S - 5, NOW_S], [0.5, -9.0],
                                        slo="router-availability")],
    })


@pytest.fixture(scope="module")
def alerts() -> AlertBook:
    firing = Alert("f1", {"alertname": "NodeHighErrorRate", "node": "node-0",
                          "severity": "page"}, "firing", NOW_S - 65,
                   {"summary": "node-0 answers 10 % 5xx"}, fired_at_s=NOW_S - 60)
    burning = Alert("b1", {"alertname": "ErrorBudgetBurn", "slo": "router-availability",
                           "severity": "page"}, "firing", NOW_S - 30, fired_at_s=NOW_S - 28)
    resolved = Alert("r1", {"alertname": "NodeDown", "node": "node-1", "severity": "page"},
                     "resolved", NOW_S - 600, {"summary": "node-1 is down"},
                     fired_at_s=NOW_S - 590, resolved_at_s=NOW_S - 500)
    return AlertBook(active=[firing, burning], recent=[burning, firing, resolved])


@pytest.fixture(scope="module")
def decisions() -> DecisionBook:
    return DecisionBook([
        Decision(1, "drain", "node-0", "succeeded",
                 "alert NodeHighErrorRate fired for node-0 (policy drain-unhealthy-node): "
                 "node-0 is now drained", NOW_S - 10, alertname="NodeHighErrorRate",
                 alert_fingerprint="f1", finished_at_s=NOW_S - 9),
    ])


@pytest.fixture(scope="module")
def app(source: ScriptedSource, alerts: AlertBook, decisions: DecisionBook) -> dash.Dash:
    return create_app(DashboardData(source, alerts, decisions, clock=SetClock(NOW_S)))


@pytest.fixture(scope="module")
def page(app: dash.Dash) -> Page:
    """One app and page per module (building one takes half a second); `fresh` resets the
    doubles behind it before every test."""
    return Page(app)


@pytest.fixture(autouse=True)
def fresh(source: ScriptedSource, alerts: AlertBook, decisions: DecisionBook) -> None:
    source.asked.clear()
    source.broken = alerts.broken = decisions.broken = False


def test_the_page_is_served_with_its_title_and_inline_style(page: Page) -> None:
    response = page.client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<title>InferOps</title>" in html
    assert ".data-table tr.row-down td" in html
    assert "https://" not in html.split("<footer>")[0]


def test_the_layout_has_every_stable_element_id_and_the_refresh_interval(page: Page) -> None:
    layout = page.client.get("/_dash-layout").get_json()
    ids: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict) and "props" in node:
            if "id" in node["props"]:
                ids[node["props"]["id"]] = node["props"]
            walk(node["props"].get("children"))

    walk(layout)
    assert set(ids) >= {str(element) for element in ElementId}
    assert ids[ElementId.REFRESH]["interval"] == 2000
    assert ids[ElementId.TIME_RANGE]["value"] == "15m"
    # The fleet table comes with the layout (no initial callback round trip).
    assert ids[ElementId.LAST_UPDATED]["children"] == "updated 2023-11-14 22:13:20 UTC"
    assert [row.key for row in table_rows(ids[ElementId.FLEET_TABLE]["children"])] == [
        "node-0", "node-1", "node-2"]


def test_every_section_has_its_callback_on_the_refresh_tick_and_its_page(page: Page) -> None:
    by_output = {
        ".".join(o.split("@")[0] for o in split_outputs(d["output"])): [
            (i["id"], i["property"]) for i in d["inputs"]
        ]
        for d in page.dependencies
    }
    tick = ("refresh-interval", "n_intervals")
    picked = ("time-range", "value")
    fleet_table = ("fleet-table", "children")
    assert by_output == {
        "page-fleet.className.page-slos.className.page-alerts.className."
        "page-remediation.className.page-kernels.className.page-cost.className."
        "nav-fleet.className.nav-slos.className.nav-alerts.className.nav-remediation.className."
        "nav-kernels.className.nav-cost.className": [("url", "pathname")],
        # The fleet table comes with the page; then it follows the tick and navigation.
        "fleet-table.children.last-updated.children": [tick, ("url", "pathname")],
        "slo-table.children.last-updated.children": [tick, ("page-slos", "className")],
        "alerts-table.children.recent-alerts-table.children.last-updated.children": [
            tick, ("page-alerts", "className")],
        "incident-timelines.children.remediations-table.children.last-updated.children": [
            tick, ("page-remediation", "className")],
        # Charts follow their page's table, so they never delay its first paint.
        "requests-chart.figure": [fleet_table, picked],
        "latency-chart.figure": [fleet_table, picked],
        "errors-chart.figure": [fleet_table, picked],
        "gpu-chart.figure": [fleet_table, picked],
        "slo-budget-chart.figure": [("slo-table", "children"), picked],
        "cost-table.children.cost-models-table.children.last-updated.children": [
            tick, ("page-cost", "className")],
        "cost-per-request-chart.figure": [("cost-models-table", "children"), picked],
        "cost-per-1k-tokens-chart.figure": [("cost-models-table", "children"), picked],
        "kernels-table.children.kernel-diff-table.children.last-updated.children": [
            tick, ("page-kernels", "className")],
        "api-session.data.sign-in-status.children.api-token-input.value": [
            ("sign-in-button", "n_clicks")],
        "approvals-table.children": [tick, ("api-session", "data"), ("review-status", "children")],
        "review-status.children": [("approve-button", "n_clicks"), ("deny-button", "n_clicks")],
        "silences-table.children": [tick, ("api-session", "data"), ("silence-status", "children")],
        "silence-status.children": [("create-silence-button", "n_clicks"),
                                    ("expire-silence-button", "n_clicks")],
    }
    states = {d["output"]: [(i["id"], i["property"]) for i in d["state"]]
              for d in page.dependencies if d["state"]}
    assert states == {
        **{f"{chart}.figure": [("page-fleet", "className")]
           for chart in ("requests-chart", "latency-chart", "errors-chart", "gpu-chart")},
        "slo-budget-chart.figure": [("page-slos", "className")],
        "cost-per-request-chart.figure": [("page-cost", "className")],
        "cost-per-1k-tokens-chart.figure": [("page-cost", "className")],
        "..api-session.data...sign-in-status.children...api-token-input.value..": [
            ("api-name-input", "value"), ("api-token-input", "value")],
        "approvals-table.children": [("page-remediation", "className")],
        "review-status.children": [("api-session", "data"), ("decision-id-input", "value"),
                                   ("review-reason-input", "value")],
        "silences-table.children": [("page-alerts", "className")],
        "silence-status.children": [("api-session", "data"), ("silence-matchers-input", "value"),
                                    ("silence-hours-input", "value"),
                                    ("silence-comment-input", "value"),
                                    ("silence-id-input", "value")],
    }
    # Shared outputs must be told apart by Dash, or the browser reports duplicates.
    assert len({d["output"] for d in page.dependencies}) == len(page.dependencies)


@pytest.mark.parametrize(
    ("path", "shown"),
    [("/", "fleet"), ("/slos", "slos"), ("/alerts", "alerts"), ("/remediation", "remediation"),
     ("/cost", "cost"), ("/kernels", "kernels"), ("/prefix/alerts/", "alerts"),
     ("/nowhere", "fleet"), (None, "fleet")],
    ids=["the root is the fleet", "SLOs", "alerts", "remediation", "cost", "kernels",
         "under a path prefix",
         "an unknown path shows the fleet", "no path yet shows the fleet"],
)
def test_the_path_shows_one_page_and_marks_its_link(
    page: Page, path: str | None, shown: str
) -> None:
    answer = page.update(("page-fleet", "className"), url=path)
    pages = ("fleet", "slos", "alerts", "remediation", "kernels", "cost")
    assert {key: value["className"] for key, value in answer.items()} == {
        **{f"page-{name}": PAGE_SHOWN if name == shown else PAGE_HIDDEN for name in pages},
        **{f"nav-{name}": "nav-link current" if name == shown else "nav-link"
           for name in pages},
    }


@pytest.mark.parametrize(
    ("output", "page_input"),
    [((ElementId.FLEET_TABLE, "children"), "url"),
     ((ElementId.SLO_TABLE, "children"), "page_slos"),
     ((ElementId.ALERTS_TABLE, "children"), "page_alerts"),
     ((ElementId.REMEDIATIONS_TABLE, "children"), "page_remediation"),
     ((ElementId.REQUESTS_CHART, "figure"), "page_fleet"),
     ((ElementId.BUDGET_CHART, "figure"), "page_slos")],
    ids=["fleet", "SLOs", "alerts", "remediation", "a fleet chart", "the burn-down chart"],
)
def test_a_hidden_page_asks_the_store_nothing(
    page: Page, source: ScriptedSource, output: tuple[str, str], page_input: str
) -> None:
    hidden = "/alerts" if page_input == "url" else PAGE_HIDDEN
    assert page.update(output, **{page_input: hidden}) == {}
    assert source.asked == []


def test_the_fleet_callback_fills_the_table_and_the_update_time(page: Page) -> None:
    answer = page.update((ElementId.FLEET_TABLE, "children"), (ElementId.LAST_UPDATED, "children"))

    assert answer[ElementId.LAST_UPDATED] == {"children": "updated 2023-11-14 22:13:20 UTC"}
    blank = dict.fromkeys(
        ("requests_per_s", "p50_s", "p99_s", "ttft_p50_s", "ttft_p99_s", "error_ratio",
         "gpu_util_percent", "gpu_memory", "gpu_temperature_celsius", "gpu_power_watts",
         "queue", "kv_usage"),
        (DASH, ""),
    )
    assert table_rows(answer[ElementId.FLEET_TABLE]["children"]) == [
        Row("node-0", "", {
            "node": ("node-0", ""), "status": ("serving", "status-serving"),
            "requests_per_s": ("10.00", ""), "p50_s": ("250 ms", ""), "p99_s": ("1.50 s", ""),
            "ttft_p50_s": ("50 ms", ""), "ttft_p99_s": ("200 ms", ""),
            "error_ratio": ("10.0 %", "bad"), "gpu_util_percent": ("87 %", ""),
            "gpu_memory": ("1.0 / 4 GiB", ""),
            "gpu_temperature_celsius": ("61 \N{DEGREE SIGN}C", ""),
            "gpu_power_watts": ("300 W", ""), "queue": ("0", ""), "kv_usage": ("42 %", ""),
        }),
        Row("node-1", "row-down", {
            "node": ("node-1", ""), "status": ("down", "status-down"), **blank,
        }),
        # Drained by the router and idle: no longer reads as serving (nor "up").
        Row("node-2", "row-drained", {
            "node": ("node-2", ""), "status": ("drained", "status-drained"), **blank,
        }),
    ]


def test_a_failing_fleet_query_blanks_the_table_with_a_message_not_a_traceback(
    page: Page, source: ScriptedSource, caplog: pytest.LogCaptureFixture
) -> None:
    source.broken = True

    answer = page.update((ElementId.FLEET_TABLE, "children"), (ElementId.LAST_UPDATED, "children"))

    assert table_message(answer[ElementId.FLEET_TABLE]["children"]) == (
        "fleet data unavailable (QueryError); see the dashboard log", 14
    )
    assert answer[ElementId.LAST_UPDATED] == {
        "children": "update failed at 2023-11-14 22:13:20 UTC"
    }
    assert "the store is locked" in caplog.text


def test_the_slo_callback_shows_an_overspent_budget_as_bad(page: Page) -> None:
    answer = page.update((ElementId.SLO_TABLE, "children"))
    assert table_rows(answer[ElementId.SLO_TABLE]["children"]) == [
        Row("router-availability", "", {
            "slo": ("router-availability", ""), "sli_ratio": ("90.000 %", ""),
            "objective_ratio": ("99.0 %", ""),
            "error_budget_remaining_ratio": ("-900.0 %", "bad"),
            "burn_rates": ("5m: 10.00\N{MULTIPLICATION SIGN}", "warn"),
            "alerts": ("ErrorBudgetBurn/page (firing)", "state-firing"),
        }),
    ]
    assert answer[ElementId.LAST_UPDATED] == {"children": "updated 2023-11-14 22:13:20 UTC"}


def test_the_slo_table_stays_when_the_alert_store_cannot_be_read(
    page: Page, alerts: AlertBook
) -> None:
    alerts.broken = True
    answer = page.update((ElementId.SLO_TABLE, "children"))
    [row] = table_rows(answer[ElementId.SLO_TABLE]["children"])
    assert (row.cells["error_budget_remaining_ratio"], row.cells["alerts"]) == (
        ("-900.0 %", "bad"), ("unavailable", "")
    )


def test_the_burn_down_chart_draws_each_budget_over_the_chosen_range(
    page: Page, source: ScriptedSource
) -> None:
    answer = page.update((ElementId.BUDGET_CHART, "figure"), time_range="1h")

    end_s = math.floor(NOW_S / 15.0) * 15.0
    assert source.asked == [("query_range", q.SLO_BUDGET_REMAINING, end_s - 3600.0, end_s, 15.0)]
    figure = answer[ElementId.BUDGET_CHART]["figure"]
    assert figure["layout"]["title"]["text"] == "Error budget remaining (burn-down)"
    assert [(t["name"], t["y"]) for t in figure["data"]] == [
        ("router-availability", [0.5, -9.0])
    ]


def test_the_alerts_page_lists_active_alerts_then_the_resolved_ones(page: Page) -> None:
    answer = page.update((ElementId.ALERTS_TABLE, "children"))
    assert table_rows(answer[ElementId.ALERTS_TABLE]["children"]) == [
        Row("b1@1699999970", "", {
            "state": ("firing", "state-firing"), "alertname": ("ErrorBudgetBurn", ""),
            "node": (DASH, ""), "severity": ("page", ""), "summary": (DASH, ""),
            "active_at_s": ("2023-11-14 22:12:50", ""), "duration": ("30s", ""),
            "resolved_at_s": (DASH, ""),
        }),
        Row("f1@1699999935", "", {
            "state": ("firing", "state-firing"), "alertname": ("NodeHighErrorRate", ""),
            "node": ("node-0", ""), "severity": ("page", ""),
            "summary": ("node-0 answers 10 % 5xx", ""),
            "active_at_s": ("2023-11-14 22:12:15", ""), "duration": ("1m 5s", ""),
            "resolved_at_s": (DASH, ""),
        }),
    ]
    assert table_rows(answer[ElementId.RECENT_ALERTS_TABLE]["children"]) == [
        Row("r1@1699999400", "", {
            "state": ("resolved", "state-resolved"), "alertname": ("NodeDown", ""),
            "node": ("node-1", ""), "severity": ("page", ""), "summary": ("node-1 is down", ""),
            "active_at_s": ("2023-11-14 22:03:20", ""), "duration": ("1m 40s", ""),
            "resolved_at_s": ("2023-11-14 22:05:00", ""),
        }),
    ]
    assert answer[ElementId.LAST_UPDATED] == {"children": "updated 2023-11-14 22:13:20 UTC"}


def test_an_unreadable_alert_store_blanks_only_the_alerts_table(
    page: Page, alerts: AlertBook
) -> None:
    alerts.broken = True

    alerts_answer = page.update((ElementId.ALERTS_TABLE, "children"))
    remediations_answer = page.update((ElementId.REMEDIATIONS_TABLE, "children"))

    for table in (ElementId.ALERTS_TABLE, ElementId.RECENT_ALERTS_TABLE):
        assert table_message(alerts_answer[table]["children"]) == (
            "alerts unavailable (RuntimeError); see the dashboard log", 8
        )
    assert len(table_rows(remediations_answer[ElementId.REMEDIATIONS_TABLE]["children"])) == 1
    assert as_json(remediations_answer[ElementId.INCIDENTS]["children"]) == [
        {"namespace": "dash_html_components", "type": "P", "props": {
            "children": "incidents unavailable (RuntimeError); see the dashboard log",
            "className": "message"}}
    ]


def test_the_remediations_callback_lists_the_decision(page: Page) -> None:
    answer = page.update((ElementId.REMEDIATIONS_TABLE, "children"))
    assert table_rows(answer[ElementId.REMEDIATIONS_TABLE]["children"]) == [
        Row("1", "", {
            "started_at_s": ("2023-11-14 22:13:10", ""), "action": ("drain", ""),
            "node": ("node-0", ""), "outcome": ("succeeded", "outcome-succeeded"),
            "alertname": ("NodeHighErrorRate", ""), "actor": ("policy:drain-unhealthy-node", ""),
            "guard": (DASH, ""),
            "reason": ("alert NodeHighErrorRate fired for node-0 (policy drain-unhealthy-node): "
                       "node-0 is now drained", ""),
        }),
    ]


def test_the_remediation_page_tells_each_incident_as_a_timeline(page: Page) -> None:
    answer = page.update((ElementId.INCIDENTS, "children"))
    blocks = as_json(answer[ElementId.INCIDENTS]["children"])
    # The most recently active first: the drain of node-0 came after the burn alert fired.
    assert [block["props"]["data-key"] for block in blocks] == ["f1", "b1", "r1"]
    f1 = blocks[0]["props"]["children"][1]["props"]["children"]
    assert [(li["props"]["data-kind"], li["props"]["children"][1]["props"]["children"])
            for li in f1] == [
        ("pending", "pending: node-0 answers 10 % 5xx"),
        ("firing", "fired: node-0 answers 10 % 5xx"),
        ("decision", "drain node-0 by policy:drain-unhealthy-node: succeeded: alert "
                     "NodeHighErrorRate fired for node-0 (policy drain-unhealthy-node): "
                     "node-0 is now drained"),
    ]


def test_an_unreadable_decision_log_says_so(page: Page, decisions: DecisionBook) -> None:
    decisions.broken = True
    answer = page.update((ElementId.REMEDIATIONS_TABLE, "children"))
    assert table_message(answer[ElementId.REMEDIATIONS_TABLE]["children"]) == (
        "remediations unavailable (RuntimeError); see the dashboard log", 8
    )


@pytest.mark.parametrize(
    ("choice", "span_s", "step_s", "window"),
    [("5m", 300.0, 2.0, 30.0), ("15m", 900.0, 5.0, 30.0), ("6h", 21_600.0, 90.0, 90.0),
     ("bogus", 900.0, 5.0, 30.0), (None, 900.0, 5.0, 30.0)],
    ids=["5 minutes", "15 minutes", "6 hours widens the rate window to the step",
         "an unknown choice reads as the default", "no choice reads as the default"],
)
def test_the_request_chart_queries_the_chosen_range_ending_on_a_whole_step(
    page: Page, source: ScriptedSource, choice: str | None, span_s: float, step_s: float,
    window: float,
) -> None:
    answer = page.update((ElementId.REQUESTS_CHART, "figure"), time_range=choice)

    end_s = math.floor(NOW_S / step_s) * step_s
    assert source.asked == [
        ("query_range", q.request_rate(window), end_s - span_s, end_s, step_s)
    ]
    figure = answer[ElementId.REQUESTS_CHART]["figure"]
    assert figure["layout"]["title"]["text"] == "Requests per second"
    if window == 30.0:
        assert [(t["name"], t["x"], t["y"]) for t in figure["data"]] == [
            ("node-0", ["2023-11-14T22:13:18", "2023-11-14T22:13:20"], [3.0, 4.0])
        ]
    else:
        assert [a["text"] for a in figure["layout"]["annotations"]] == ["no data yet"]


@pytest.mark.parametrize(
    "element",
    [ElementId.REQUESTS_CHART, ElementId.LATENCY_CHART, ElementId.ERRORS_CHART,
     ElementId.GPU_CHART],
)
def test_a_chart_whose_query_fails_says_so_in_the_chart(
    page: Page, source: ScriptedSource, element: ElementId
) -> None:
    source.broken = True
    figure = page.update((element, "figure"))[element]["figure"]
    assert figure["data"] == []
    assert [a["text"] for a in figure["layout"]["annotations"]] == [
        "chart unavailable (QueryError); see the dashboard log"
    ]


def test_two_apps_in_one_process_each_read_their_own_data() -> None:
    def app_for(node: str) -> dash.Dash:
        source = ScriptedSource({expr: [] for expr in FLEET_QUERIES} | {
            q.NODE_UP: [sample(1, node=node)]
        })
        return create_app(DashboardData(source, AlertBook(), DecisionBook(),
                                        clock=SetClock(NOW_S)), title=f"Fleet {node}")

    first, second = Page(app_for("a-0")), Page(app_for("b-0"))
    outputs = ((ElementId.FLEET_TABLE, "children"), (ElementId.LAST_UPDATED, "children"))

    assert [r.key for r in table_rows(first.update(*outputs)[ElementId.FLEET_TABLE]["children"])
            ] == ["a-0"]
    assert [r.key for r in table_rows(second.update(*outputs)[ElementId.FLEET_TABLE]["children"])
            ] == ["b-0"]
    assert "<title>Fleet b-0</title>" in second.client.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"refresh_s": 0.0}, "refresh_s must be a positive number of seconds, got 0.0"),
        ({"refresh_s": math.nan}, "refresh_s must be a positive number of seconds, got nan"),
        ({"title": "  "}, "title must not be empty, got '  '"),
    ],
    ids=["a refresh of zero", "a NaN refresh", "a blank title"],
)
def test_create_app_refuses_arguments_that_cannot_work(
    options: dict[str, Any], message: str
) -> None:
    data = DashboardData(ScriptedSource(), AlertBook(), DecisionBook())
    with pytest.raises(DashboardArgumentError) as raised:
        create_app(data, **options)
    assert str(raised.value) == message


# --- serving over real HTTP ----------------------------------------------------------------


@pytest.fixture
def server(app: dash.Dash) -> Iterator[DashboardServer]:
    with DashboardServer(app, host="127.0.0.1", port=0) as running:
        yield running


def test_the_server_serves_the_page_and_callbacks_on_a_free_port(server: DashboardServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"

    page = httpx.get(server.url, timeout=10)
    dependencies = httpx.get(f"{server.url}_dash-dependencies", timeout=10)

    assert page.status_code == 200
    assert "<title>InferOps</title>" in page.text
    assert len(dependencies.json()) == 19
    for path in ("/slos", "/alerts", "/remediation", "/kernels", "/cost"):
        assert "<title>InferOps</title>" in httpx.get(f"{server.url}{path[1:]}", timeout=10).text


def test_the_server_stops_and_frees_its_port(app: dash.Dash) -> None:
    server = DashboardServer(app, port=0)
    server.start()
    url = server.url
    assert httpx.get(url, timeout=10).status_code == 200

    server.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)


def test_a_server_cannot_be_started_twice(app: dash.Dash) -> None:
    with DashboardServer(app, port=0) as server, pytest.raises(RuntimeError) as raised:
        server.start()
    assert str(raised.value) == "the dashboard server is already started"


def test_a_server_that_never_started_can_be_stopped(app: dash.Dash) -> None:
    server = DashboardServer(app, port=0)
    server.stop()


@pytest.mark.parametrize("port", [-1, 65_536])
def test_a_port_outside_the_range_is_refused(app: dash.Dash, port: int) -> None:
    with pytest.raises(DashboardArgumentError) as raised:
        DashboardServer(app, port=port)
    assert str(raised.value) == f"port must be 0..65535, got {port}"
