"""The alerts page's silences: list them, create one, expire one, through the
control-plane API as the engineer signed in on the remediation page (same session)."""

from __future__ import annotations

import logging
import math

import dash
from dash import Input, Output, State, dcc, html

from ._actions import ControlPlaneClient, SilenceRow, TokenSessions
from ._approvals import NOT_CONFIGURED
from ._element_ids import ElementId
from ._exceptions import ControlPlaneError
from ._signed_in_table import SignedInTable
from ._tables import Column, render_table

_LOG = logging.getLogger(__name__)

SIGNED_OUT = "sign in on the remediation page to see and change silences"

SILENCE_COLUMNS: tuple[Column[SilenceRow], ...] = (
    Column("id", "Silence", lambda row: row.id),
    Column("state", "State", lambda row: row.state, lambda row: f"silence-{row.state}"),
    Column("matchers", "Matchers", lambda row: row.matchers),
    Column("ends_at", "Ends (UTC)", lambda row: row.ends_at),
    Column("created_by", "Created by", lambda row: row.created_by),
    Column("comment", "Comment", lambda row: row.comment),
)


def silences_table(rows: list[SilenceRow], message: str) -> list[html.Thead | html.Tbody]:
    return render_table(SILENCE_COLUMNS, rows, row_key=lambda row: row.id, empty_message=message)


def section() -> html.Section:
    return html.Section(
        id="silences-section",
        children=[
            html.H2("Silences"),
            html.Table(
                silences_table([], SIGNED_OUT), id=ElementId.SILENCES_TABLE, className="data-table"
            ),
            html.Div(
                className="review",
                children=[
                    dcc.Input(
                        id=ElementId.SILENCE_MATCHERS_INPUT,
                        placeholder="node=node-1, alertname=~Node.*",
                        type="text",
                    ),
                    dcc.Input(
                        id=ElementId.SILENCE_HOURS_INPUT,
                        placeholder="hours",
                        type="text",
                        value="2",
                    ),
                    dcc.Input(
                        id=ElementId.SILENCE_COMMENT_INPUT, placeholder="comment", type="text"
                    ),
                    html.Button("Create silence", id=ElementId.CREATE_SILENCE_BUTTON),
                ],
            ),
            html.Div(
                className="review",
                children=[
                    dcc.Input(id=ElementId.SILENCE_ID_INPUT, placeholder="silence id", type="text"),
                    html.Button("Expire", id=ElementId.EXPIRE_SILENCE_BUTTON),
                    html.Span("", id=ElementId.SILENCE_STATUS),
                ],
            ),
        ],
    )


_SILENCES: SignedInTable[SilenceRow] = SignedInTable(
    "silences", silences_table, not_configured=NOT_CONFIGURED, signed_out=SIGNED_OUT,
    empty="no silences", log=_LOG,
)


def register_silence_callbacks(
    app: dash.Dash, api: ControlPlaneClient | None, sessions: TokenSessions
) -> None:
    _SILENCES.register(
        app, api, sessions, table=ElementId.SILENCES_TABLE, status=ElementId.SILENCE_STATUS,
        page=ElementId.ALERTS_PAGE, fetch=lambda client, who: client.silences(who),
    )

    @app.callback(
        Output(ElementId.SILENCE_STATUS, "children"),
        Input(ElementId.CREATE_SILENCE_BUTTON, "n_clicks"),
        Input(ElementId.EXPIRE_SILENCE_BUTTON, "n_clicks"),
        State(ElementId.SESSION, "data"),
        State(ElementId.SILENCE_MATCHERS_INPUT, "value"),
        State(ElementId.SILENCE_HOURS_INPUT, "value"),
        State(ElementId.SILENCE_COMMENT_INPUT, "value"),
        State(ElementId.SILENCE_ID_INPUT, "value"),
        prevent_initial_call=True,
    )
    def change_silence(
        _create: int | None,
        _expire: int | None,
        session: str | None,
        matchers: str | None,
        hours: str | None,
        comment: str | None,
        silence_id: str | None,
    ) -> str:
        credential = sessions.credential(session)
        if api is None or credential is None:
            return SIGNED_OUT if api is not None else NOT_CONFIGURED
        try:
            if dash.ctx.triggered_id == ElementId.EXPIRE_SILENCE_BUTTON:
                if not (silence_id or "").strip():
                    return "silence id: enter the id of the silence to expire"
                api.expire_silence(credential, (silence_id or "").strip())
                return f"silence {(silence_id or '').strip()} expired by {credential.actor}"
            try:
                duration_h = float(hours or "")
            except ValueError:
                return f"hours: expected a number of hours, got {hours!r}"
            if not (math.isfinite(duration_h) and duration_h > 0):
                return f"hours: must be above zero, got {hours!r}"
            created = api.create_silence(
                credential, matchers or "", duration_h * 3600, comment or ""
            )
            return f"silence {created} created by {credential.actor}"
        except ValueError as error:
            return str(error)
        except ControlPlaneError as error:
            return f"not done: {error}"
