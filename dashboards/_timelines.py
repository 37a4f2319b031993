"""Incident timelines as Dash HTML: one block per incident, one line per event.

Each block carries `data-key` (the alert fingerprint) and each line `data-kind`, so
scripts read a timeline without parsing its text.
"""

from __future__ import annotations

from collections.abc import Sequence

from dash import html

from ._display import NO_VALUE, format_instant
from ._rows import Incident, IncidentEvent
from ._tables import data_attribute

NO_INCIDENTS = "no incidents yet"


def incident_blocks(incidents: Sequence[Incident]) -> list[html.Div | html.P]:
    if not incidents:
        return [message_block(NO_INCIDENTS)]
    return [_incident_block(incident) for incident in incidents]


def message_block(message: str) -> html.P:
    return html.P(message, className="message")


def _incident_block(incident: Incident) -> html.Div:
    title = incident.alertname or "manual action"
    node = incident.node or NO_VALUE
    return html.Div(
        className="incident",
        children=[
            html.H3(
                [
                    html.Span(title, className="incident-alert"),
                    html.Span(f" on {node}", className="incident-node"),
                    html.Span(
                        f" since {format_instant(incident.started_at_s)} UTC",
                        className="incident-start",
                    ),
                ]
            ),
            html.Ol([_event_line(event) for event in incident.events], className="timeline"),
        ],
        **data_attribute("key", incident.key),
    )


def _event_line(event: IncidentEvent) -> html.Li:
    css = f"event-{event.kind}"
    if event.outcome is not None:
        css += f" outcome-{event.outcome}"
    return html.Li(
        [
            html.Span(format_instant(event.at_s), className="event-time"),
            html.Span(event.text, className="event-text"),
        ],
        className=css,
        **data_attribute("kind", event.kind),
    )
