"""The remediation page's approvals: sign in with the API token once per browser session,
see the decisions pending approval, approve or deny one by id, all through the
control-plane API (`ControlPlaneClient`)."""

from __future__ import annotations

import logging

import dash
from dash import Input, Output, State, dcc, html

from ._actions import ControlPlaneClient, Credential, PendingApproval, TokenSessions
from ._display import format_instant
from ._element_ids import ElementId
from ._exceptions import ControlPlaneError
from ._signed_in_table import SignedInTable
from ._tables import Column, render_table

_LOG = logging.getLogger(__name__)

NOT_CONFIGURED = "no control-plane API configured: the dashboard is read-only"
SIGNED_OUT = "sign in with the control-plane API token to review pending approvals"

APPROVAL_COLUMNS: tuple[Column[PendingApproval], ...] = (
    Column("id", "Decision", lambda row: str(row.id)),
    Column("started_at_s", "Asked (UTC)", lambda row: format_instant(row.started_at_s)),
    Column("action", "Action", lambda row: row.action),
    Column("node", "Node", lambda row: row.node),
    Column("alertname", "Alert", lambda row: row.alertname or "\N{EN DASH}"),
    Column("reason", "Reason", lambda row: row.reason),
)


def approvals_table(rows: list[PendingApproval], message: str) -> list[html.Thead | html.Tbody]:
    return render_table(
        APPROVAL_COLUMNS, rows, row_key=lambda row: str(row.id), empty_message=message
    )


def section() -> html.Section:
    return html.Section(
        id="approvals-section",
        children=[
            html.H2("Pending approvals"),
            dcc.Store(id=ElementId.SESSION, storage_type="session"),
            html.Div(
                className="sign-in",
                children=[
                    dcc.Input(id=ElementId.API_NAME_INPUT, placeholder="your name", type="text"),
                    dcc.Input(
                        id=ElementId.API_TOKEN_INPUT, placeholder="API token", type="password"
                    ),
                    html.Button("Sign in", id=ElementId.SIGN_IN_BUTTON),
                    html.Span(SIGNED_OUT, id=ElementId.SIGN_IN_STATUS, className="message"),
                ],
            ),
            html.Table(
                approvals_table([], SIGNED_OUT),
                id=ElementId.APPROVALS_TABLE,
                className="data-table",
            ),
            html.Div(
                className="review",
                children=[
                    dcc.Input(
                        id=ElementId.DECISION_ID_INPUT, placeholder="decision", type="number"
                    ),
                    dcc.Input(id=ElementId.REVIEW_REASON_INPUT, placeholder="reason", type="text"),
                    html.Button("Approve", id=ElementId.APPROVE_BUTTON),
                    html.Button("Deny", id=ElementId.DENY_BUTTON),
                    html.Span("", id=ElementId.REVIEW_STATUS),
                ],
            ),
        ],
    )


_APPROVALS: SignedInTable[PendingApproval] = SignedInTable(
    "pending approvals", approvals_table, not_configured=NOT_CONFIGURED, signed_out=SIGNED_OUT,
    empty="nothing is waiting for approval", log=_LOG,
)


def register_approval_callbacks(
    app: dash.Dash, api: ControlPlaneClient | None, sessions: TokenSessions
) -> None:
    @app.callback(
        Output(ElementId.SESSION, "data"),
        Output(ElementId.SIGN_IN_STATUS, "children"),
        Output(ElementId.API_TOKEN_INPUT, "value"),
        Input(ElementId.SIGN_IN_BUTTON, "n_clicks"),
        State(ElementId.API_NAME_INPUT, "value"),
        State(ElementId.API_TOKEN_INPUT, "value"),
        prevent_initial_call=True,
    )
    def sign_in(
        _clicks: int | None, name: str | None, token: str | None
    ) -> tuple[str | None, str, str]:
        if api is None:
            return None, NOT_CONFIGURED, ""
        who, secret = (name or "").strip(), (token or "").strip()
        if not who or not secret:
            return None, "enter your name and the API token", ""
        credential = Credential(token=secret, actor=f"dashboard:{who}")
        try:
            api.check(credential)
        except ControlPlaneError as error:
            return None, f"not signed in: {error}", ""
        return sessions.sign_in(credential), f"signed in as {credential.actor}", ""

    _APPROVALS.register(
        app, api, sessions, table=ElementId.APPROVALS_TABLE, status=ElementId.REVIEW_STATUS,
        page=ElementId.REMEDIATION_PAGE, fetch=lambda client, who: client.pending_approvals(who),
    )

    @app.callback(
        Output(ElementId.REVIEW_STATUS, "children"),
        Input(ElementId.APPROVE_BUTTON, "n_clicks"),
        Input(ElementId.DENY_BUTTON, "n_clicks"),
        State(ElementId.SESSION, "data"),
        State(ElementId.DECISION_ID_INPUT, "value"),
        State(ElementId.REVIEW_REASON_INPUT, "value"),
        prevent_initial_call=True,
    )
    def review(
        _approve: int | None,
        _deny: int | None,
        session: str | None,
        decision_id: float | None,
        reason: str | None,
    ) -> str:
        verdict = "approve" if dash.ctx.triggered_id == ElementId.APPROVE_BUTTON else "deny"
        credential = sessions.credential(session)
        if api is None or credential is None:
            return SIGNED_OUT if api is not None else NOT_CONFIGURED
        if decision_id is None or decision_id != int(decision_id):
            return f"decision: enter the id of a pending decision, got {decision_id!r}"
        try:
            outcome = api.review(credential, int(decision_id), verdict, reason or "")
        except ControlPlaneError as error:
            return f"decision {int(decision_id)}: {error}"
        return f"decision {int(decision_id)}: {verdict} by {credential.actor} -> {outcome}"
