"""The page's look, inlined into Dash's index page.

Inline rather than an `assets/` folder: nothing to ship as package data, nothing fetched
from outside (the dashboard runs on hosts with no internet).
"""

from __future__ import annotations

STYLESHEET = """
body { margin: 0; background: #f4f5f7; color: #1d2330;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       font-size: 14px; }
.page { max-width: 1400px; margin: 0 auto; padding: 0 16px 32px; }
.topbar { display: flex; align-items: center; gap: 24px; padding: 12px 0;
          border-bottom: 1px solid #d8dbe2; margin-bottom: 12px; }
.topbar h1 { font-size: 20px; margin: 0; }
.topbar .updated { color: #5b6475; flex: 1; }
.page-nav { display: flex; gap: 4px; }
.page-nav a { padding: 5px 12px; border-radius: 5px; color: #3056a0; text-decoration: none;
              font-weight: 600; }
.page-nav a:hover { background: #e6ebf5; }
.page-nav a.current { background: #3056a0; color: #fff; }
.page-view.hidden { display: none; }
.range-picker label { margin-left: 12px; cursor: pointer; }
.range-picker input { margin-right: 4px; }
section { background: #fff; border: 1px solid #d8dbe2; border-radius: 6px;
          padding: 8px 14px 14px; margin-bottom: 14px; }
section h2 { font-size: 16px; margin: 6px 0 10px; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px;
          margin-top: 12px; }
table.data-table { width: 100%; border-collapse: collapse; }
.data-table th { text-align: left; font-weight: 600; color: #5b6475;
                 border-bottom: 2px solid #d8dbe2; padding: 6px 8px; white-space: nowrap; }
.data-table td { border-bottom: 1px solid #eceef2; padding: 6px 8px;
                 font-variant-numeric: tabular-nums; white-space: nowrap; }
.data-table td[data-column="summary"], .data-table td[data-column="reason"],
.data-table td.message { white-space: normal; }
.data-table td.message { color: #5b6475; font-style: italic; text-align: center; }
.data-table tr.row-down td { background: #fdecee; }
.data-table tr.row-drained td { background: #f1f2f5; color: #5b6475; }
.status-serving { color: #1b7f3b; font-weight: 600; }
.status-down { color: #b00020; font-weight: 600; }
.data-table td.status-draining, .data-table td.status-drained { color: #8a6d00;
                                                               font-weight: 600; }
.status-unknown { color: #8a6d00; }
.incidents .message, .data-table td.message { color: #5b6475; font-style: italic; }
.incident { border-left: 3px solid #d8dbe2; padding: 2px 0 2px 12px; margin: 10px 0; }
.incident h3 { font-size: 14px; margin: 0 0 6px; }
.incident-node, .incident-start { color: #5b6475; font-weight: 400; }
.timeline { list-style: none; margin: 0; padding: 0; }
.timeline li { display: flex; gap: 12px; padding: 2px 0; }
.timeline .event-time { color: #5b6475; font-variant-numeric: tabular-nums;
                        white-space: nowrap; }
.event-firing .event-text { color: #b00020; font-weight: 600; }
.event-pending .event-text { color: #8a6d00; }
.event-resolved .event-text { color: #1b7f3b; }
.bad, .state-firing, .outcome-failed { color: #b00020; font-weight: 600; }
.warn, .state-pending, .outcome-refused { color: #8a6d00; font-weight: 600; }
.good, .state-resolved, .outcome-succeeded { color: #1b7f3b; }
.outcome-dry_run { color: #3056a0; }
.sign-in, .review { display: flex; gap: 8px; align-items: center; margin: 8px 0; }
.sign-in > div, .review > div, .sign-in input, .review input { width: 220px; flex: none; }
.sign-in input, .review input { padding: 5px 8px; border: 1px solid #c3c8d2;
                                border-radius: 4px; }
.sign-in button, .review button { padding: 5px 14px; border: 1px solid #3056a0;
                                  border-radius: 4px; background: #fff; color: #3056a0;
                                  font-weight: 600; cursor: pointer; }
.sign-in .message { color: #5b6475; font-style: italic; }
"""

INDEX_PAGE = (
    """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <style>"""
    + STYLESHEET
    + """</style>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""
)
