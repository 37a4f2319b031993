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
.up-up { color: #1b7f3b; font-weight: 600; }
.up-down { color: #b00020; font-weight: 600; }
.up-unknown { color: #8a6d00; }
.bad, .state-firing, .outcome-failed { color: #b00020; font-weight: 600; }
.warn, .state-pending, .outcome-refused { color: #8a6d00; font-weight: 600; }
.good, .state-resolved, .outcome-succeeded { color: #1b7f3b; }
.outcome-dry_run { color: #3056a0; }
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
