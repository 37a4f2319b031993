"""A table the dashboard fills from the control-plane API for a signed-in browser session
(pending approvals, silences): the same page, configuration, sign-in and error handling for
each, so a new such table cannot get one of them wrong."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import dash
from dash import Input, Output, State, html
from dash.exceptions import PreventUpdate

from ._actions import ControlPlaneClient, Credential, TokenSessions
from ._element_ids import ElementId
from ._exceptions import ControlPlaneError
from ._pages import PAGE_SHOWN

__all__ = ["SignedInTable"]

Row = TypeVar("Row")
TableChildren = list[html.Thead | html.Tbody]


class SignedInTable(Generic[Row]):
    """What one such table says in each case: not configured, signed out, empty, failed."""

    def __init__(
        self,
        what: str,
        render: Callable[[list[Row], str], TableChildren],
        *,
        not_configured: str,
        signed_out: str,
        empty: str,
        log: logging.Logger,
    ) -> None:
        self._what, self._render = what, render
        self._not_configured, self._signed_out, self._empty = not_configured, signed_out, empty
        self._log = log

    def rows(
        self,
        api: ControlPlaneClient | None,
        sessions: TokenSessions,
        session: str | None,
        page_class: str | None,
        fetch: Callable[[ControlPlaneClient, Credential], list[Row]],
    ) -> TableChildren:
        """The table's children; no update while its page is hidden (nothing is fetched)."""
        if page_class != PAGE_SHOWN:
            raise PreventUpdate
        if api is None:
            return self._render([], self._not_configured)
        credential = sessions.credential(session)
        if credential is None:
            return self._render([], self._signed_out)
        try:
            found = fetch(api, credential)
        except ControlPlaneError as error:
            self._log.warning("%s: %s", self._what, error)
            return self._render([], f"{self._what} unavailable: {error}")
        return self._render(found, self._empty)

    def register(
        self,
        app: dash.Dash,
        api: ControlPlaneClient | None,
        sessions: TokenSessions,
        *,
        table: ElementId,
        status: ElementId,
        page: ElementId,
        fetch: Callable[[ControlPlaneClient, Credential], list[Row]],
    ) -> None:
        """Refresh `table` on every tick, on sign-in and after the page's action (`status`
        changed), while `page` is shown."""

        @app.callback(
            Output(table, "children"),
            Input(ElementId.REFRESH, "n_intervals"),
            Input(ElementId.SESSION, "data"),
            Input(status, "children"),
            State(page, "className"),
        )
        def refresh(
            _tick: int | None, session: str | None, _status: str | None, page_class: str | None
        ) -> TableChildren:
            return self.rows(api, sessions, session, page_class, fetch)
