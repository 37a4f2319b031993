"""The fleet table in the first HTML response: the index page of the fleet path carries it
as static HTML (what an engineer sees before Dash's JavaScript runs), and the layout
request of the same load takes over the rendered table instead of querying again."""

from __future__ import annotations

import dash
import pytest
from dash import html
from dashboards_doubles import AlertBook, DecisionBook, ScriptedSource, SetClock, table_rows
from test_dashboards_app import FLEET_QUERIES, NOW_S

from dashboards import DashboardData, ElementId, create_app
from dashboards._first_paint import FleetSnapshot, RenderedFleet, static_html

NODE_0_ROW = (
    '<tr data-key="node-0"><td data-column="node">node-0</td>'
    '<td class="status-serving" data-column="status">serving</td>'
    '<td data-column="requests_per_s">10.00</td><td data-column="p50_s">250 ms</td>'
    '<td data-column="p99_s">1.50 s</td><td data-column="ttft_p50_s">50 ms</td>'
    '<td data-column="ttft_p99_s">200 ms</td>'
    '<td class="bad" data-column="error_ratio">10.0 %</td>'
    '<td data-column="gpu_util_percent">87 %</td>'
    '<td data-column="gpu_memory">1.0 / 4 GiB</td>'
    '<td data-column="gpu_temperature_celsius">61 \N{DEGREE SIGN}C</td>'
    '<td data-column="gpu_power_watts">300 W</td><td data-column="queue">0</td>'
    '<td data-column="kv_usage">42 %</td></tr>'
)


@pytest.fixture
def source() -> ScriptedSource:
    return ScriptedSource(FLEET_QUERIES, {})


@pytest.fixture
def app(source: ScriptedSource) -> dash.Dash:
    data = DashboardData(source, AlertBook(), DecisionBook([]), clock=SetClock(NOW_S))
    return create_app(data)



def test_the_fleet_page_arrives_with_its_table_as_html(app: dash.Dash) -> None:
    page = app.server.test_client().get("/").get_data(as_text=True)
    entry = page.split('<div id="react-entry-point">', 1)[1]
    assert entry.startswith(
        '<div class="page"><section><h2>Fleet</h2><table id="fleet-table" class="data-table">'
        "<thead><tr><th>Node</th><th>Status</th>"
    )
    assert NODE_0_ROW in entry
    assert '<tr class="row-down" data-key="node-1"><td data-column="node">node-1</td>' in entry
    assert '<tr class="row-drained" data-key="node-2">' in entry


@pytest.mark.parametrize("path", ["/slos", "/alerts", "/remediation"])
def test_other_pages_arrive_without_the_fleet_table(app: dash.Dash, path: str) -> None:
    page = app.server.test_client().get(path).get_data(as_text=True)
    entry = page.split('<div id="react-entry-point">', 1)[1].split("</div>", 1)[0]
    assert entry.split() == ['<div', 'class="_dash-loading">', "Loading..."]
    assert 'data-key="node-0"' not in page


def test_the_layout_of_the_same_load_takes_the_rendered_table_without_querying_again(
    app: dash.Dash, source: ScriptedSource
) -> None:
    client = app.server.test_client()
    client.get("/alerts")  # Dash checks the layout once, on its first request
    source.asked.clear()
    client.get("/")
    by_index = len(source.asked)
    layout = client.get("/_dash-layout").get_json()
    assert len(source.asked) == by_index == len(FLEET_QUERIES) - 4  # all but the SLO queries
    # A second layout request (no index before it) queries the store itself.
    client.get("/_dash-layout")
    assert len(source.asked) == 2 * by_index
    assert 'data-key="node-0"' not in str(layout)
    assert "'data-key': 'node-0'" in str(layout)


def test_a_rendered_table_is_handed_over_once_and_only_while_fresh() -> None:
    renders: list[int] = []
    now = [100.0]

    def render() -> RenderedFleet:
        renders.append(len(renders) + 1)
        return RenderedFleet([], f"render {len(renders)}")

    snapshot = FleetSnapshot(render, max_age_s=2.0, monotonic=lambda: now[0])
    assert snapshot.render_and_keep().updated == "render 1"
    assert snapshot.take().updated == "render 1"
    assert snapshot.take().updated == "render 2"
    snapshot.render_and_keep()
    now[0] += 2.5
    assert snapshot.take().updated == "render 4"


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        (html.Td("a < b & c", className="bad"), '<td class="bad">a &lt; b &amp; c</td>'),
        (html.Td("x", colSpan=3, **{"data-column": 'say "hi"'}),
         '<td colspan="3" data-column="say &quot;hi&quot;">x</td>'),
        (html.Tr([html.Td(1), html.Td(None)]), "<tr><td>1</td><td></td></tr>"),
        (html.Table(id=ElementId.FLEET_TABLE), '<table id="fleet-table"></table>'),
    ],
)
def test_static_html_is_what_react_renders(component: html.Div, expected: str) -> None:
    assert static_html(component) == expected


def test_the_layout_rows_match_the_html_rows(app: dash.Dash) -> None:
    client = app.server.test_client()
    client.get("/")
    layout = client.get("/_dash-layout").get_json()
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict) and "props" in node:
            if node["props"].get("id") == ElementId.FLEET_TABLE:
                found.extend(str(row.key) for row in table_rows(node["props"]["children"]))
            walk(node["props"].get("children"))

    walk(layout)
    assert found == ["node-0", "node-1", "node-2"]
